use super::*;
use crate::plan::plan_with;
use crate::status;
use crate::testing::*;
use std::collections::BTreeSet;

const FLEET_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse, generation: 1}
spec:
  controllerName: gatehouse.dev/gateway-controller
  parametersRef: {group: gatehouse.dev, kind: GatewayClassConfig, name: params}
";

fn configs(spec: &str) -> Vec<GatewayClassConfig> {
    vec![serde_yaml::from_str(&format!("metadata: {{name: params}}\nspec: {spec}")).unwrap()]
}

fn fleet_service(ingress: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: edge, namespace: gatehouse-system}}
spec:
  clusterIP: 10.96.0.50
  ports: [{{name: http, port: 80}}]
status: {{loadBalancer: {{ingress: [{ingress}]}}}}
"
    )
}

fn key(name: &str) -> GatewayKey {
    ("ns".to_string(), name.to_string())
}

const FLEET: &str =
    "{mode: SharedFleet, sharedFleet: {namespace: gatehouse-system, service: edge}}";

#[test]
fn shared_fleet_gateways_take_the_fleet_address_and_create_nothing() {
    let objects = parse(&[
        FLEET_CLASS,
        &gateway("ns", "a", 8080, ""),
        &fleet_service(""),
    ]);
    let r = resolve(&objects, &configs(FLEET), None);
    assert_eq!(
        r.external[&key("a")],
        External::Address("10.96.0.50".parse().unwrap())
    );
    assert!(r.provisioned.is_empty());

    // A load-balancer IP wins over the ClusterIP.
    let objects = parse(&[
        FLEET_CLASS,
        &gateway("ns", "a", 8080, ""),
        &fleet_service("{ip: 203.0.113.7}"),
    ]);
    let r = resolve(&objects, &configs(FLEET), None);
    assert_eq!(
        r.external[&key("a")],
        External::Address("203.0.113.7".parse().unwrap())
    );

    // The Gateway status says which fleet Service is missing.
    let objects = parse(&[FLEET_CLASS, &gateway("ns", "a", 8080, "")]);
    let r = resolve(&objects, &configs(FLEET), None);
    let plan = plan_with(
        &objects,
        &"127.0.0.10-127.0.0.20".parse().unwrap(),
        &BTreeMap::new(),
        &r,
    );
    let statuses = status::compute(&objects, &plan, &BTreeSet::new());
    let programmed = &statuses.gateways[0].status.conditions[1];
    assert_eq!(programmed.reason, "AddressNotAssigned");
    assert_eq!(
        programmed.message,
        "fleet Service gatehouse-system/edge not found"
    );
    assert!(statuses.gateways[0].status.addresses.is_empty());
}

#[test]
fn fleet_address_reaches_status_and_the_pool_is_not_used() {
    let objects = parse(&[
        FLEET_CLASS,
        &gateway("ns", "a", 8080, ""),
        &fleet_service(""),
    ]);
    let r = resolve(&objects, &configs(FLEET), None);
    let plan = plan_with(
        &objects,
        &"127.0.0.10-127.0.0.20".parse().unwrap(),
        &BTreeMap::new(),
        &r,
    );
    let statuses = status::compute(&objects, &plan, &BTreeSet::new());
    let addresses: Vec<&str> = statuses.gateways[0]
        .status
        .addresses
        .iter()
        .map(|a| a.value.as_str())
        .collect();
    assert_eq!(addresses, ["10.96.0.50"]);
    assert!(statuses.classes[0].status.conditions[0].is_true());
}

#[test]
fn provisioned_gateways_are_rendered_and_wait_for_their_service() {
    let objects = parse(&[FLEET_CLASS, &gateway("ns", "a", 8080, "")]);
    let spec = "{mode: Provisioned, provisioned: {image: gatehouse:dev, replicas: 2}}";
    let r = resolve(&objects, &configs(spec), Some("http://controller:9000"));
    let rendered = &r.provisioned[&key("a")];
    assert_eq!(
        rendered.service.metadata.name.as_deref(),
        Some("a-gatehouse")
    );
    assert_eq!(
        r.external[&key("a")],
        External::Awaiting("creating Service ns/a-gatehouse".to_string())
    );

    // Once the Service exists (ours), its ClusterIP is the address.
    let ours = "apiVersion: v1
kind: Service
metadata:
  name: a-gatehouse
  namespace: ns
  labels: {app.kubernetes.io/managed-by: gatehouse}
  ownerReferences: [{apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: a, uid: u1, controller: true}]
spec: {clusterIP: 10.96.1.1, ports: [{port: 8080}]}
";
    let objects = parse(&[FLEET_CLASS, &gateway("ns", "a", 8080, ""), ours]);
    let r = resolve(&objects, &configs(spec), Some("http://controller:9000"));
    assert_eq!(
        r.external[&key("a")],
        External::Address("10.96.1.1".parse().unwrap())
    );
    assert!(r.provisioned.contains_key(&key("a")));
}

#[test]
fn a_service_we_did_not_create_is_never_taken_over() {
    let theirs = "apiVersion: v1
kind: Service
metadata: {name: a-gatehouse, namespace: ns}
spec: {clusterIP: 10.96.1.2, ports: [{port: 80}]}
";
    let objects = parse(&[FLEET_CLASS, &gateway("ns", "a", 8080, ""), theirs]);
    let spec = "{mode: Provisioned, provisioned: {image: gatehouse:dev}}";
    let r = resolve(&objects, &configs(spec), Some("http://controller:9000"));
    assert!(r.provisioned.is_empty(), "nothing may be applied over it");
    assert!(matches!(
        &r.external[&key("a")],
        External::Awaiting(why) if why.contains("was not created by Gatehouse")
    ));
}

#[test]
fn unusable_parameters_reject_class_and_gateways() {
    let objects = parse(&[FLEET_CLASS, &gateway("ns", "a", 8080, "")]);
    let r = resolve(&objects, &[], None);
    let plan = plan_with(
        &objects,
        &"127.0.0.10-127.0.0.20".parse().unwrap(),
        &BTreeMap::new(),
        &r,
    );
    let statuses = status::compute(&objects, &plan, &BTreeSet::new());
    let class = &statuses.classes[0].status.conditions[0];
    assert_eq!(
        (class.status, class.reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert_eq!(
        class.message,
        "GatewayClass gatehouse: spec.parametersRef: GatewayClassConfig \"params\" not found"
    );
    let gw = &statuses.gateways[0].status.conditions[0];
    assert_eq!(
        (gw.status, gw.reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert!(
        plan.translation.resources.is_empty(),
        "nothing of it is served"
    );

    // Provisioned without any controller URL is refused the same way, per Gateway.
    let spec = "{mode: Provisioned, provisioned: {image: gatehouse:dev}}";
    let r = resolve(&objects, &configs(spec), None);
    assert!(matches!(
        &r.external[&key("a")],
        External::InvalidParameters(why) if why.contains("--proxy-controller-url")
    ));
}

#[test]
fn local_classes_are_left_to_the_pool() {
    let objects = parse(&[CLASS, &gateway("ns", "a", 8080, "")]);
    let r = resolve(&objects, &[], None);
    assert_eq!(r, Resolution::default());
}
