//! In-cluster modes against a real kube-apiserver and kube-controller-manager (its
//! garbage collector): provisioned Gateways get a Deployment + Service, shared-fleet
//! Gateways get the fleet's address and nothing else, broken parameters are reported.
//!
//! Skipped, loudly, without `GATEHOUSE_KUBECONFIG` (scripts/test sets it).

use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const NS: &str = "prov-e2e";
const WAIT: Duration = Duration::from_secs(60);
const CONTROLLER_URL: &str = "http://gatehouse-controller.gatehouse-system:9000";

fn kubeconfig() -> Option<PathBuf> {
    let path = std::env::var_os("GATEHOUSE_KUBECONFIG");
    if path.is_none() {
        // Written to stderr directly: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: GATEHOUSE_KUBECONFIG is not set; the provisioning test needs a \
             running API server (scripts/test starts one) ***\n"
        );
    }
    path.map(PathBuf::from)
}

fn install_crds(kubeconfig: &PathBuf) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/cluster/install-crds");
    let out = Command::new(&script)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("install-crds runs");
    assert!(
        out.status.success(),
        "install-crds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kubectl(kubeconfig: &PathBuf, args: &[&str]) {
    let bin = std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client acting as the chart's controller ServiceAccount, so the test also proves the
/// chart's RBAC is enough for everything the controller does here.
async fn client_as_chart_account(kubeconfig: &PathBuf) -> Client {
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/gatehouse");
    let chart = chart.to_str().unwrap();
    kubectl(
        kubeconfig,
        &["apply", "-f", &format!("{chart}/namespace.yaml")],
    );
    kubectl(
        kubeconfig,
        &[
            "apply",
            "-n",
            "gatehouse-system",
            "-f",
            &format!("{chart}/controller-rbac.yaml"),
        ],
    );
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig reads"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is usable");
    config.auth_info.impersonate =
        Some("system:serviceaccount:gatehouse-system:gatehouse-controller".to_string());
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".to_string(),
        "system:serviceaccounts:gatehouse-system".to_string(),
        "system:authenticated".to_string(),
    ]);
    Client::try_from(config).expect("client")
}

async fn apply<K>(api: &Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("gatehouse-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > WAIT => {
                panic!("{what}: still not true after {WAIT:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn condition<'a>(conditions: Option<&'a Vec<Condition>>, kind: &str) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == kind)
}

fn class(name: &str, config: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {
            "controllerName": gatehouse_controller::CONTROLLER_NAME,
            "parametersRef": {"group": "gatehouse.dev", "kind": "GatewayClassConfig", "name": config},
        },
    })
}

fn gateway(name: &str, class: &str, port: u16) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "gatewayClassName": class,
            "infrastructure": {
                "labels": {"team": "payments"},
                "annotations": {"example.com/cost-center": "42"},
            },
            "listeners": [{"name": "http", "protocol": "HTTP", "port": port}],
        },
    })
}

async fn gateway_addresses(api: &Api<Gateway>, name: &str) -> Result<Vec<String>, String> {
    let gw = api.get(name).await.map_err(|e| e.to_string())?;
    Ok(gw
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.value)
        .collect())
}

fn service_ports(s: &Service) -> Vec<i32> {
    s.spec
        .as_ref()
        .and_then(|sp| sp.ports.as_ref())
        .map(|ps| ps.iter().map(|p| p.port).collect())
        .unwrap_or_default()
}

fn cluster_ip(s: &Service) -> String {
    s.spec
        .as_ref()
        .and_then(|sp| sp.cluster_ip.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_and_shared_fleet_gateways() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let classes: Api<GatewayClass> = Api::all(client.clone());
    let configs: Api<gatehouse_crds::GatewayClassConfig> = Api::all(client.clone());
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), NS);
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);

    // A namespace left by an earlier, failed run is waited away first.
    let _ = namespaces.delete(NS, &DeleteParams::default()).await;
    eventually("old namespace gone", || async {
        match namespaces.get_opt(NS).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    apply(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await;

    apply(
        &configs,
        json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "GatewayClassConfig",
            "metadata": {"name": "prov-e2e-provisioned"},
            "spec": {"mode": "Provisioned", "provisioned": {
                "image": "gatehouse:e2e", "replicas": 2,
                "resources": {"limits": {"memory": "128Mi"}},
            }},
        }),
    )
    .await;
    apply(
        &configs,
        json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "GatewayClassConfig",
            "metadata": {"name": "prov-e2e-fleet"},
            "spec": {"mode": "SharedFleet", "sharedFleet": {"namespace": NS, "service": "edge"}},
        }),
    )
    .await;
    apply(
        &classes,
        class("prov-e2e-provisioned", "prov-e2e-provisioned"),
    )
    .await;
    apply(&classes, class("prov-e2e-fleet", "prov-e2e-fleet")).await;
    apply(&classes, class("prov-e2e-broken", "prov-e2e-missing")).await;
    // The fleet: a Service a platform team made (its pods do not matter to the controller).
    apply(
        &services,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "edge", "namespace": NS},
            "spec": {"selector": {"app": "edge"}, "ports": [{"port": 80}]},
        }),
    )
    .await;
    // Someone else's Service, under the name a provisioned Gateway `other` would get.
    apply(
        &services,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "other-gatehouse", "namespace": NS},
            "spec": {"selector": {"app": "mine"}, "ports": [{"port": 1234}]},
        }),
    )
    .await;

    let controller_client = client_as_chart_account(&kubeconfig).await;
    let controller = tokio::spawn(gatehouse_controller::run(
        controller_client,
        gatehouse_controller::Config {
            // No proxy connects in this test: the config API only has to bind.
            config_listen: "127.0.0.1:0".parse().unwrap(),
            config_tls: None,
            pool: "127.0.0.10-127.0.0.200".parse().unwrap(),
            debounce: Duration::from_millis(50),
            lease: None,
            proxy_controller_url: Some(CONTROLLER_URL.to_string()),
            crd_recheck: Duration::from_secs(30),
        },
    ));

    apply(&gateways, gateway("web", "prov-e2e-provisioned", 8080)).await;
    let web_uid = gateways.get("web").await.unwrap().uid().unwrap();

    // Deployment: propagated metadata (object and pods), owner, parameters, command.
    let deployment = eventually("Deployment web-gatehouse", || async {
        deployments
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not there".to_string())
    })
    .await;
    let template = deployment.spec.as_ref().unwrap().template.clone();
    for labels in [
        deployment.labels(),
        template.metadata.as_ref().unwrap().labels.as_ref().unwrap(),
    ] {
        assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
        assert_eq!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("gatehouse")
        );
    }
    assert_eq!(deployment.annotations()["example.com/cost-center"], "42");
    assert_eq!(
        template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()["example.com/cost-center"],
        "42"
    );
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Gateway", "web", web_uid.as_str())
    );
    assert_eq!(deployment.spec.as_ref().unwrap().replicas, Some(2));
    let container = &template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("gatehouse:e2e"));
    let args = container.args.clone().unwrap().join(" ");
    assert!(
        args.contains(&format!("--controller {CONTROLLER_URL} --gateway {NS}/web")),
        "{args}"
    );
    assert!(
        deployment
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("gatehouse")
                && m.operation.as_deref() == Some("Apply")),
        "server-side applied by field manager gatehouse"
    );

    // Service: same metadata and owner, the listener port; its ClusterIP is the address.
    let service = eventually("Service web-gatehouse", || async {
        services
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not there".to_string())
    })
    .await;
    assert_eq!(service.labels()["team"], "payments");
    assert_eq!(service.annotations()["example.com/cost-center"], "42");
    assert_eq!(service.owner_references()[0].uid, web_uid);
    assert_eq!(service_ports(&service), [8080]);
    let ip = cluster_ip(&service);
    eventually(
        "web's status address is its Service's ClusterIP",
        || async {
            let got = gateway_addresses(&gateways, "web").await?;
            if got == [ip.clone()] {
                Ok(())
            } else {
                Err(format!("{got:?}, want [{ip}]"))
            }
        },
    )
    .await;

    // A listener port change reaches the Service.
    apply(&gateways, gateway("web", "prov-e2e-provisioned", 9090)).await;
    eventually("Service follows the listener port", || async {
        let s = services
            .get("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?;
        let ports = service_ports(&s);
        if ports == [9090] {
            Ok(())
        } else {
            Err(format!("{ports:?}"))
        }
    })
    .await;

    // Shared fleet: the fleet's address, nothing created.
    apply(&gateways, gateway("shared", "prov-e2e-fleet", 8080)).await;
    let edge_ip = cluster_ip(&services.get("edge").await.unwrap());
    eventually("shared's status address is the fleet Service's", || async {
        let got = gateway_addresses(&gateways, "shared").await?;
        if got == [edge_ip.clone()] {
            Ok(())
        } else {
            Err(format!("{got:?}, want [{edge_ip}]"))
        }
    })
    .await;
    assert!(
        deployments
            .get_opt("shared-gatehouse")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        services
            .get_opt("shared-gatehouse")
            .await
            .unwrap()
            .is_none()
    );

    // Unusable parameters: the class says why, its Gateway is not accepted.
    apply(&gateways, gateway("lost", "prov-e2e-broken", 8080)).await;
    eventually("broken class InvalidParameters", || async {
        let c = classes
            .get("prov-e2e-broken")
            .await
            .map_err(|e| e.to_string())?;
        let status = c.status.as_ref().and_then(|s| s.conditions.as_ref());
        match condition(status, "Accepted") {
            Some(c)
                if c.status == "False"
                    && c.reason == "InvalidParameters"
                    && c.message
                        .contains("GatewayClassConfig \"prov-e2e-missing\" not found") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("its Gateway InvalidParameters", || async {
        let gw = gateways.get("lost").await.map_err(|e| e.to_string())?;
        let status = gw.status.as_ref().and_then(|s| s.conditions.as_ref());
        match condition(status, "Accepted") {
            Some(c) if c.status == "False" && c.reason == "InvalidParameters" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A Service we did not create is left alone and the Gateway says why.
    apply(&gateways, gateway("other", "prov-e2e-provisioned", 8080)).await;
    eventually("other waits on the foreign Service", || async {
        let gw = gateways.get("other").await.map_err(|e| e.to_string())?;
        let status = gw.status.as_ref().and_then(|s| s.conditions.as_ref());
        match condition(status, "Programmed") {
            Some(c)
                if c.reason == "AddressNotAssigned"
                    && c.message.contains("not created by Gatehouse") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let foreign = services.get("other-gatehouse").await.unwrap();
    assert_eq!(service_ports(&foreign), [1234]);
    assert!(
        !foreign
            .labels()
            .contains_key("app.kubernetes.io/managed-by")
    );
    assert!(foreign.owner_references().is_empty());
    assert!(
        deployments
            .get_opt("other-gatehouse")
            .await
            .unwrap()
            .is_none()
    );

    // Moving to another class removes what we created for it; moving back recreates it.
    apply(&gateways, gateway("web", "prov-e2e-fleet", 9090)).await;
    eventually("web's objects removed after the class change", || async {
        let d = deployments
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?;
        let s = services
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?;
        if d.is_none() && s.is_none() {
            Ok(())
        } else {
            Err(format!(
                "deployment {}, service {}",
                d.is_some(),
                s.is_some()
            ))
        }
    })
    .await;
    assert!(
        services.get_opt("edge").await.unwrap().is_some(),
        "the fleet is not ours to delete"
    );
    apply(&gateways, gateway("web", "prov-e2e-provisioned", 9090)).await;
    eventually("web's objects back", || async {
        let d = deployments
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?;
        let s = services
            .get_opt("web-gatehouse")
            .await
            .map_err(|e| e.to_string())?;
        if d.is_some() && s.is_some() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;

    // With the controller stopped, deleting the Gateway leaves cleanup to the garbage
    // collector: the owner references alone must remove both.
    controller.abort();
    let _ = controller.await;
    gateways
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "garbage collector removes web's Deployment and Service",
        || async {
            let d = deployments
                .get_opt("web-gatehouse")
                .await
                .map_err(|e| e.to_string())?;
            let s = services
                .get_opt("web-gatehouse")
                .await
                .map_err(|e| e.to_string())?;
            if d.is_none() && s.is_none() {
                Ok(())
            } else {
                Err(format!(
                    "deployment {}, service {}",
                    d.is_some(),
                    s.is_some()
                ))
            }
        },
    )
    .await;
    let ours = services
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=gatehouse"))
        .await
        .unwrap();
    assert!(
        ours.items.is_empty(),
        "{:?}",
        ours.items.iter().map(|s| s.name_any()).collect::<Vec<_>>()
    );

    let _ = namespaces.delete(NS, &DeleteParams::default()).await;
    for c in ["prov-e2e-provisioned", "prov-e2e-fleet", "prov-e2e-broken"] {
        let _ = classes.delete(c, &DeleteParams::default()).await;
    }
    for c in ["prov-e2e-provisioned", "prov-e2e-fleet"] {
        let _ = configs.delete(c, &DeleteParams::default()).await;
    }
}
