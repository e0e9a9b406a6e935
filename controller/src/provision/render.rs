//! Pure rendering of a provisioned Gateway's proxy: Gateway + class parameters in,
//! Deployment + Service out, ready for server-side apply.

use gatehouse_crds::ProvisionedProxy;
use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

/// Set on everything the controller creates; with the owner reference it is how cleanup
/// tells our objects from anyone else's.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gatehouse";
/// The rendered object name, also the pod selector (a Gateway name may be longer than a
/// label value may be, the object name never is).
pub const PROXY_LABEL: &str = "gatehouse.dev/proxy";
const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";

#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub deployment: Deployment,
    pub service: Service,
}

/// `<gateway>-gatehouse`, or when that would not fit a DNS label (63), a cut name with a
/// hash of the full name so two long names never collide. Stable across versions and runs.
pub fn object_name(gateway: &str) -> String {
    let full = format!("{gateway}-gatehouse");
    if full.len() <= 63 {
        return full;
    }
    let hash = format!("{:08x}", fnv1a(gateway.as_bytes()));
    let keep: String = gateway
        .chars()
        .take(63 - 1 - hash.len() - "-gatehouse".len())
        .collect();
    format!("{}-{hash}-gatehouse", keep.trim_end_matches(['-', '.']))
}

/// FNV-1a: tiny, and unlike std's hasher its output is fixed forever.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

pub fn render(gw: &Gateway, proxy: &ProvisionedProxy, controller_url: &str) -> Rendered {
    let namespace = gw.metadata.namespace.clone().unwrap_or_default();
    let gw_name = gw.metadata.name.clone().unwrap_or_default();
    let name = object_name(&gw_name);
    let infrastructure = gw.spec.infrastructure.as_ref();
    let mut labels = infrastructure
        .and_then(|i| i.labels.clone())
        .unwrap_or_default();
    // Ours last: a Gateway's labels must not be able to steal the selector or cleanup label.
    let selector = BTreeMap::from([(PROXY_LABEL.to_string(), name.clone())]);
    labels.extend(selector.clone());
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    let annotations = infrastructure.and_then(|i| i.annotations.clone());
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        labels: Some(labels.clone()),
        annotations: annotations.clone(),
        owner_references: Some(vec![OwnerReference {
            api_version: GATEWAY_API_VERSION.to_string(),
            kind: "Gateway".to_string(),
            name: gw_name.clone(),
            uid: gw.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: None,
        }]),
        ..ObjectMeta::default()
    };
    let ports: BTreeSet<i32> = gw.spec.listeners.iter().map(|l| l.port).collect();

    let container = Container {
        name: "proxy".to_string(),
        image: Some(proxy.image.clone()),
        args: Some(vec![
            "proxy".to_string(),
            "--controller".to_string(),
            controller_url.to_string(),
            "--gateway".to_string(),
            format!("{namespace}/{gw_name}"),
            // The pod's address is not the Gateway's (that is the Service's).
            "--bind-any".to_string(),
        ]),
        ports: Some(
            ports
                .iter()
                .map(|p| ContainerPort {
                    container_port: *p,
                    protocol: Some("TCP".to_string()),
                    ..ContainerPort::default()
                })
                .collect(),
        ),
        resources: proxy.resources.clone(),
        ..Container::default()
    };
    let deployment = Deployment {
        metadata: meta.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(proxy.replicas),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(format!("port-{p}")),
                        port: *p,
                        target_port: Some(IntOrString::Int(*p)),
                        protocol: Some("TCP".to_string()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    Rendered {
        deployment,
        service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(yaml_extra: &str) -> Gateway {
        serde_yaml::from_str(&format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: shop, uid: 1234-abcd}}
spec:
  gatewayClassName: provisioned
  listeners:
  - {{name: http, protocol: HTTP, port: 8080}}
  - {{name: http-b, protocol: HTTP, port: 8080, hostname: b.example}}
  - {{name: https, protocol: HTTPS, port: 8443}}
{yaml_extra}"
        ))
        .unwrap()
    }

    fn proxy() -> ProvisionedProxy {
        serde_yaml::from_str(
            "image: ghcr.io/gatehouse-dev/gatehouse:0.1.0
replicas: 3
resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}",
        )
        .unwrap()
    }

    #[test]
    fn names_are_stable_and_fit_a_dns_label() {
        assert_eq!(object_name("web"), "web-gatehouse");
        let long = "a".repeat(100);
        let name = object_name(&long);
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, object_name(&long), "same input, same name");
        let other = format!("{}b", "a".repeat(99));
        assert_ne!(
            name,
            object_name(&other),
            "long names sharing a prefix differ"
        );
        // Pinned: a changed name would orphan every existing Deployment on upgrade.
        assert_eq!(fnv1a(b"web"), 0x0fd9_bc91);
    }

    #[test]
    fn one_service_port_per_listener_port_and_the_proxy_command() {
        let r = render(&gateway(""), &proxy(), "https://ctl.gatehouse-system:9443");
        let ports: Vec<(Option<String>, i32)> = r
            .service
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.name.clone(), p.port))
            .collect();
        assert_eq!(
            ports,
            vec![
                (Some("port-8080".to_string()), 8080),
                (Some("port-8443".to_string()), 8443)
            ]
        );
        let spec = r.deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(3));
        let pod = spec.template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("ghcr.io/gatehouse-dev/gatehouse:0.1.0")
        );
        assert_eq!(
            c.args.as_deref().unwrap(),
            [
                "proxy",
                "--controller",
                "https://ctl.gatehouse-system:9443",
                "--gateway",
                "shop/web",
                "--bind-any"
            ]
        );
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["memory"].0, "128Mi");
        // The Service selects exactly the Deployment's pods.
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        for (k, v) in r.service.spec.as_ref().unwrap().selector.as_ref().unwrap() {
            assert_eq!(pod_labels.get(k), Some(v));
            assert_eq!(spec.selector.match_labels.as_ref().unwrap().get(k), Some(v));
        }
    }

    #[test]
    fn infrastructure_metadata_reaches_deployment_pods_and_service_but_not_our_labels() {
        let extra = "  infrastructure:
    labels: {team: payments, app.kubernetes.io/managed-by: someone-else, gatehouse.dev/proxy: x}
    annotations: {cost-center: \"42\"}";
        let r = render(&gateway(extra), &proxy(), "https://ctl:9443");
        let template = r
            .deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .clone()
            .unwrap();
        for meta in [&r.deployment.metadata, &r.service.metadata, &template] {
            let labels = meta.labels.as_ref().unwrap();
            assert_eq!(labels["team"], "payments");
            assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
            assert_eq!(labels[PROXY_LABEL], "web-gatehouse");
            assert_eq!(meta.annotations.as_ref().unwrap()["cost-center"], "42");
        }
        for meta in [&r.deployment.metadata, &r.service.metadata] {
            assert_eq!(meta.name.as_deref(), Some("web-gatehouse"));
            assert_eq!(meta.namespace.as_deref(), Some("shop"));
            let owner = &meta.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
                ("Gateway", "web", "1234-abcd")
            );
            assert_eq!(owner.controller, Some(true));
        }
    }
}
