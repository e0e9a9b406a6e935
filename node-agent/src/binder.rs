//! The scheduler's one job, for a single-node cluster: bind every Pending pod that has
//! no node (and whose nodeSelector this node satisfies) to this node.

use crate::node::labels;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

/// Whether this agent should place the pod here.
pub fn wants(pod: &Pod, node_name: &str) -> bool {
    let Some(spec) = &pod.spec else { return false };
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
        || pod.metadata.deletion_timestamp.is_some()
    {
        return false;
    }
    if spec
        .scheduler_name
        .as_deref()
        .is_some_and(|s| s != "default-scheduler")
    {
        return false;
    }
    let ours = labels(node_name);
    spec.node_selector
        .iter()
        .flatten()
        .all(|(k, v)| ours.get(k).and_then(Value::as_str) == Some(v.as_str()))
}

pub async fn run(client: Client, node_name: String) {
    let api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields("spec.nodeName=");
    let stream = watcher(api, config).default_backoff().applied_objects();
    futures_util::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(pod) => pod,
            Err(e) => {
                tracing::warn!("watching unscheduled pods: {e}");
                continue;
            }
        };
        if !wants(&pod, &node_name) {
            continue;
        }
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let binding = Binding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node_name.clone()),
                ..Default::default()
            },
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match pods
            .create_subresource::<_, Value>("binding", &name, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => tracing::info!(pod = %format!("{ns}/{name}"), node = %node_name, "bound"),
            // Already bound, or gone: someone else's decision stands.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => tracing::warn!(pod = %format!("{ns}/{name}"), "binding: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn binds_unscheduled_pods_that_fit_this_node_only() {
        let c = json!([{"name": "c", "image": "x"}]);
        assert!(wants(&pod(json!({"containers": c})), "n1"));
        assert!(!wants(
            &pod(json!({"containers": c, "nodeName": "n2"})),
            "n1"
        ));
        assert!(!wants(
            &pod(json!({"containers": c, "schedulerName": "other"})),
            "n1"
        ));
        assert!(wants(
            &pod(json!({"containers": c, "nodeSelector": {"kubernetes.io/os": "linux"}})),
            "n1"
        ));
        assert!(!wants(
            &pod(json!({"containers": c, "nodeSelector": {"disk": "ssd"}})),
            "n1"
        ));
        assert!(wants(
            &pod(json!({"containers": c, "nodeSelector": {"kubernetes.io/hostname": "n1"}})),
            "n1"
        ));
    }
}
