// Package suite runs the upstream Gateway API conformance suite against Gatehouse.
//
// Everything specific to Gatehouse is set here; everything else comes from the
// suite's own flags (-run-test, -skip-tests, -debug, -timeout-config-overrides, ...),
// so a single test can be re-run by hand with the usual `go test` flags.
// conformance/run starts the cluster, the node agent and Gatehouse before calling it.
package suite

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
)

// env returns the variable's value, or def when it is unset or empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestGatehouseConformance(t *testing.T) {
	opts := conformance.DefaultOptions(t)
	opts.GatewayClassName = env("GATEHOUSE_GATEWAY_CLASS", "gatehouse")
	var profiles []suite.ConformanceProfileName
	for _, p := range strings.Split(env("GATEHOUSE_CONFORMANCE_PROFILES", "GATEWAY-HTTP"), ",") {
		profiles = append(profiles, suite.ConformanceProfileName(strings.TrimSpace(p)))
	}
	opts.ConformanceProfiles = profiles
	opts.ReportOutputPath = os.Getenv("GATEHOUSE_CONFORMANCE_REPORT")
	opts.Implementation = confv1.Implementation{
		Organization: "gatehouse",
		Project:      "gatehouse",
		URL:          "https://gatehouse.invalid/gatehouse",
		Version:      env("GATEHOUSE_VERSION", "dev"),
		Contact:      []string{"dev@gatehouse.invalid"},
	}
	// Base resources live only as long as the throwaway cluster; keeping them saves the
	// namespace deletion wait at the end of every run.
	opts.CleanupBaseResources = false
	conformance.RunConformanceWithOptions(t, opts)
}
