//! The committed manifests match the Rust types, and say what a cluster admin relies on.

use gatehouse_core::hostname::is_valid_hostname;
use gatehouse_crds::generate::{REGENERATE_COMMAND, all_crds, committed_dir, file_name, render};
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use std::collections::BTreeSet;
use std::path::Path;

fn committed(name: &str) -> CustomResourceDefinition {
    let path = committed_dir().join(format!("gatehouse.dev_{name}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `{REGENERATE_COMMAND}`", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: not an apiextensions.k8s.io/v1 CustomResourceDefinition: {e}",
            path.display()
        )
    })
}

#[test]
fn committed_yaml_matches_the_rust_types() {
    let dir = committed_dir();
    for crd in all_crds() {
        let path = dir.join(file_name(&crd));
        let want = render(&crd).expect("render");
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is out of date with the Rust types; regenerate with `{REGENERATE_COMMAND}`",
            path.display()
        );
    }
}

#[test]
fn no_stale_manifest_is_left_behind() {
    let expected: BTreeSet<String> = all_crds().iter().map(file_name).collect();
    let present: BTreeSet<String> = std::fs::read_dir(committed_dir())
        .expect("crds/yaml exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        present, expected,
        "crds/yaml holds files gen-crds would not write; delete them and run `{REGENERATE_COMMAND}`"
    );
}

fn version_schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    let version = &crd.spec.versions[0];
    version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("openAPIV3Schema")
}

fn field<'a>(schema: &'a JSONSchemaProps, path: &[&str]) -> &'a JSONSchemaProps {
    path.iter().fold(schema, |s, segment| match *segment {
        "[]" => match s.items.as_ref() {
            Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(inner)) => inner,
            other => panic!("no items schema at {segment}: {other:?}"),
        },
        name => s
            .properties
            .as_ref()
            .and_then(|p| p.get(name))
            .unwrap_or_else(|| panic!("no field {name} in {path:?}")),
    })
}

fn rules(schema: &JSONSchemaProps) -> Vec<String> {
    schema
        .x_kubernetes_validations
        .iter()
        .flatten()
        .map(|r| r.rule.clone())
        .collect()
}

#[test]
fn every_crd_has_a_status_subresource_and_described_printer_columns() {
    for name in ["tenants", "tenantroutes", "tenantcertificates"] {
        let crd = committed(name);
        assert_eq!(crd.spec.group, "gatehouse.dev");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status must be a subresource so tenants cannot write it with spec"
        );
        let columns = version.additional_printer_columns.as_deref().unwrap_or(&[]);
        assert!(columns.len() >= 3, "{name}: kubectl get shows too little");
        for column in columns {
            assert!(
                column.description.as_deref().is_some_and(|d| d.len() > 10),
                "{name}: printer column {} has no explanation",
                column.name
            );
        }
        assert!(columns.iter().any(|c| c.name == "Age"));
    }
}

#[test]
fn tenant_is_cluster_scoped_and_tenant_objects_are_namespaced() {
    assert_eq!(committed("tenants").spec.scope, "Cluster");
    assert_eq!(committed("tenantroutes").spec.scope, "Namespaced");
    assert_eq!(committed("tenantcertificates").spec.scope, "Namespaced");
    // GatewayClasses are cluster-scoped, and so are their parameters.
    assert_eq!(committed("gatewayclassconfigs").spec.scope, "Cluster");
}

#[test]
fn hostname_rules_are_enforced_by_the_apiserver() {
    let routes = committed("tenantroutes");
    let hostnames = field(version_schema(&routes), &["spec", "hostnames"]);
    assert!(
        rules(hostnames)
            .iter()
            .any(|r| r.contains("size(self) > 0"))
    );
    assert_eq!(hostnames.max_items, Some(16), "CEL cost needs a bound");
    let item = field(hostnames, &["[]"]);
    assert_eq!(item.max_length, Some(253));
    let item_rules = rules(item).join("\n");
    assert!(item_rules.contains("startsWith('*.')"), "{item_rules}");
    assert!(item_rules.contains("self.matches('^([*][.])?[a-z0-9]"));

    let tenants = committed("tenants");
    let domains = field(version_schema(&tenants), &["spec", "domains", "[]"]);
    assert_eq!(
        rules(domains),
        rules(item),
        "claims and route hostnames differ"
    );
    let certs = committed("tenantcertificates");
    let cert_hostnames = field(version_schema(&certs), &["spec", "hostnames", "[]"]);
    assert_eq!(rules(cert_hostnames), rules(item));
}

#[test]
fn limits_and_shapes_are_validated_by_cel() {
    let tenants = committed("tenants");
    let spec = field(version_schema(&tenants), &["spec"]);
    for limit in [
        "routes",
        "hostnames",
        "certificates",
        "requestsPerSecond",
        "concurrentConnections",
    ] {
        assert_eq!(
            rules(field(spec, &["limits", limit])),
            vec!["self >= 0".to_string()],
            "limits.{limit}"
        );
    }
    assert!(!rules(field(spec, &["namespaces"])).is_empty());
    assert!(!rules(field(spec, &["listenerSetPorts"])).is_empty());

    let routes = committed("tenantroutes");
    let route_spec = field(version_schema(&routes), &["spec"]);
    assert_eq!(
        rules(route_spec),
        vec!["has(self.http) != has(self.grpc)".to_string()]
    );
    assert!(
        route_spec
            .properties
            .as_ref()
            .is_some_and(|p| !p.contains_key("parentRefs")),
        "tenants must not pick their own listeners"
    );
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn examples_deserialize_into_the_rust_types() {
    let tenant: Tenant = serde_yaml::from_str(&example("tenant.yaml")).expect("tenant.yaml");
    assert_eq!(tenant.spec.domains.len(), 2);
    assert_eq!(tenant.spec.limits.routes, Some(50));
    assert_eq!(tenant.spec.listeners[0].section_names, vec!["https"]);

    let http: TenantRoute =
        serde_yaml::from_str(&example("tenantroute-http.yaml")).expect("tenantroute-http.yaml");
    let rules = http.spec.http.as_ref().expect("http rules");
    assert_eq!(rules[0].backend_refs.as_ref().map(Vec::len), Some(2));
    assert!(http.spec.grpc.is_none());

    let grpc: TenantRoute =
        serde_yaml::from_str(&example("tenantroute-grpc.yaml")).expect("tenantroute-grpc.yaml");
    assert!(grpc.spec.grpc.is_some() && grpc.spec.http.is_none());

    let cert: TenantCertificate =
        serde_yaml::from_str(&example("tenantcertificate.yaml")).expect("tenantcertificate.yaml");
    assert_eq!(cert.spec.secret_name, "shop-tls");
}

#[test]
fn example_hostnames_are_valid_for_the_policy_engine() {
    let tenant: Tenant = serde_yaml::from_str(&example("tenant.yaml")).expect("tenant.yaml");
    let cert: TenantCertificate =
        serde_yaml::from_str(&example("tenantcertificate.yaml")).expect("cert");
    let route: TenantRoute =
        serde_yaml::from_str(&example("tenantroute-grpc.yaml")).expect("route");
    for h in tenant
        .spec
        .domains
        .iter()
        .chain(&cert.spec.hostnames)
        .chain(&route.spec.hostnames)
    {
        assert!(is_valid_hostname(h.as_str()), "{h}");
    }
}

#[test]
fn a_route_without_hostnames_does_not_deserialize() {
    // Hostnames are required: a typo such as `hostname:` must not yield a route that would
    // match every host.
    let typo = example("tenantroute-http.yaml").replace("hostnames:", "hostname:");
    assert!(serde_yaml::from_str::<TenantRoute>(&typo).is_err());
}

#[test]
fn gatewayclassconfig_examples_deserialize_with_defaults() {
    use gatehouse_crds::{GatewayClassConfig, ProxyMode};
    use serde::Deserialize;
    let text = example("gatewayclassconfig.yaml");
    let configs: Vec<GatewayClassConfig> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| GatewayClassConfig::deserialize(doc).expect("gatewayclassconfig.yaml"))
        .collect();
    assert_eq!(configs.len(), 2);
    assert_eq!(configs[0].spec.mode, ProxyMode::SharedFleet);
    assert_eq!(
        configs[0]
            .spec
            .shared_fleet
            .as_ref()
            .map(|f| f.service.as_str()),
        Some("gatehouse-edge")
    );
    let provisioned = configs[1].spec.provisioned.as_ref().expect("provisioned");
    assert_eq!(provisioned.replicas, 2);
    // replicas defaults to one.
    let minimal: GatewayClassConfig = serde_yaml::from_str(
        "metadata: {name: m}\nspec: {mode: Provisioned, provisioned: {image: img}}",
    )
    .unwrap();
    assert_eq!(minimal.spec.provisioned.unwrap().replicas, 1);
}
