//! The Node object and its heartbeats: registration, Ready condition, addresses,
//! capacity, kubelet endpoint, and the Lease in kube-node-lease.

use crate::config::AgentConfig;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const LEASE_NAMESPACE: &str = "kube-node-lease";
const LEASE_SECONDS: i32 = 40;
/// What the agent offers, as a kubelet would report it.
const MAX_PODS: &str = "110";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("Node {name}: {action}: {source}")]
    Api {
        name: String,
        action: &'static str,
        source: kube::Error,
    },
}

fn api_err<'a>(name: &'a str, action: &'static str) -> impl FnOnce(kube::Error) -> NodeError + 'a {
    move |source| NodeError::Api {
        name: name.into(),
        action,
        source,
    }
}

pub fn labels(node_name: &str) -> Value {
    json!({
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "node.gatehouse.dev/agent": "true",
    })
}

/// Creates the Node if it does not exist (an existing one is kept, as the kubelet does).
pub async fn register(client: &Client, cfg: &AgentConfig) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": cfg.node_name, "labels": labels(&cfg.node_name)},
        "spec": {"podCIDR": cfg.cidr.to_string(), "podCIDRs": [cfg.cidr.to_string()]},
    }))
    .expect("a valid Node");
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(api_err(&cfg.node_name, "create")(e)),
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The status the agent reports; `ready` false with `why` when it is stopping.
pub fn status(
    cfg: &AgentConfig,
    ready: bool,
    why: &str,
    now: Timestamp,
    since: Timestamp,
) -> Value {
    let now_s = Time(now);
    let since_s = Time(since);
    let pressure = |type_: &str, reason: &str| {
        json!({"type": type_, "status": "False", "reason": reason, "message": "the node agent does not measure this",
               "lastHeartbeatTime": now_s, "lastTransitionTime": since_s})
    };
    let capacity = json!({
        "cpu": cpus().to_string(),
        "memory": format!("{}Ki", memory_kib()),
        "pods": MAX_PODS,
        "ephemeral-storage": "10Gi",
    });
    json!({
        "conditions": [
            pressure("MemoryPressure", "KubeletHasSufficientMemory"),
            pressure("DiskPressure", "KubeletHasNoDiskPressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID"),
            {"type": "Ready", "status": if ready { "True" } else { "False" },
             "reason": if ready { "KubeletReady" } else { "KubeletNotReady" }, "message": why,
             "lastHeartbeatTime": now_s, "lastTransitionTime": since_s},
        ],
        "addresses": [
            {"type": "InternalIP", "address": cfg.cidr.gateway().to_string()},
            {"type": "Hostname", "address": cfg.node_name},
        ],
        "capacity": capacity,
        "allocatable": capacity,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet_port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": kernel(), "osImage": "gatehouse node agent (processes, no containers)",
            "containerRuntimeVersion": "gatehouse-node-agent://processes",
            "kubeletVersion": concat!("gatehouse-node-agent/", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": labels("")["kubernetes.io/arch"],
        },
    })
}

pub async fn write_status(
    client: &Client,
    cfg: &AgentConfig,
    status: Value,
) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    api.patch_status(
        &cfg.node_name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map(drop)
    .map_err(api_err(&cfg.node_name, "update status"))
}

/// Renews (creating if needed) the node's Lease.
pub async fn renew_lease(client: &Client, cfg: &AgentConfig) -> Result<(), NodeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(Timestamp::now());
    match api
        .get_opt(&cfg.node_name)
        .await
        .map_err(api_err(&cfg.node_name, "read Lease"))?
    {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(cfg.node_name.clone());
            spec.lease_duration_seconds = Some(LEASE_SECONDS);
            spec.renew_time = Some(now);
            api.replace(&cfg.node_name, &PostParams::default(), &lease)
                .await
                .map(drop)
                .map_err(api_err(&cfg.node_name, "renew Lease"))
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": cfg.node_name, "namespace": LEASE_NAMESPACE},
                "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now},
            }))
            .expect("a valid Lease");
            api.create(&PostParams::default(), &lease)
                .await
                .map(drop)
                .map_err(api_err(&cfg.node_name, "create Lease"))
        }
    }
}

/// Heartbeats until cancelled: status and Lease every `cfg.heartbeat`.
pub async fn heartbeat(client: Client, cfg: AgentConfig, since: Timestamp) {
    let mut every = tokio::time::interval(cfg.heartbeat);
    loop {
        every.tick().await;
        let s = status(
            &cfg,
            true,
            "gatehouse node agent is posting ready status",
            Timestamp::now(),
            since,
        );
        if let Err(e) = write_status(&client, &cfg, s).await {
            tracing::warn!("{e}");
        }
        if let Err(e) = renew_lease(&client, &cfg).await {
            tracing::warn!("{e}");
        }
    }
}
