// CoreDNS with a reduced plugin set. Upstream's main imports core/plugin, which links
// every plugin (cloud SDKs, etcd, Kubernetes client); the conformance Corefile needs only
// forward, log, errors and whoami (health and ready are added so pods may probe CoreDNS
// the usual way), so linking just those keeps the build minutes shorter. A Corefile naming
// any other plugin fails at startup with "Unknown directive".
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() {
	coremain.Run()
}
