//! Writes computed status with server-side apply on the status subresource.
//!
//! Two things keep writes from feeding back into endless reconciles: a condition keeps its
//! `lastTransitionTime` while its status is unchanged, and a status identical to the one
//! last written for the same object (by uid) is not sent again.

use crate::status::{Named, Statuses};
use crate::tenancy::TenancyObjects;
use gatehouse_core::manifest::Object;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use thiserror::Error;

pub const FIELD_MANAGER: &str = "gatehouse";
const API_VERSION: &str = "gateway.networking.k8s.io/v1";
const TENANCY_API_VERSION: &str = "gatehouse.dev/v1alpha1";

#[derive(Debug, Error)]
#[error("{object}: status: {source}")]
pub struct WriteError {
    /// `HTTPRoute ns/name`.
    pub object: String,
    pub source: kube::Error,
}

pub struct StatusWriter {
    client: Client,
    /// Last status written, by kind and uid.
    written: HashMap<(&'static str, String), Value>,
}

impl StatusWriter {
    pub fn new(client: Client) -> Self {
        StatusWriter {
            client,
            written: HashMap::new(),
        }
    }

    /// Forgets what was written, so the next write sends everything again (another
    /// replica may have written in between).
    pub fn forget(&mut self) {
        self.written.clear();
    }

    /// Writes what changed; errors are returned, not fatal: the next reconcile retries.
    pub async fn write(
        &mut self,
        statuses: &Statuses,
        objects: &[Object],
        tenancy: &TenancyObjects,
    ) -> Vec<WriteError> {
        let mut errors = Vec::new();
        let now = Timestamp::now().to_string();
        let current = |kind: &str, ns: &Option<String>, name: &str| {
            objects
                .iter()
                .find(|o| o.kind() == kind && o.namespace() == ns.as_deref() && o.name() == name)
                .and_then(current_status)
                .unwrap_or(Value::Null)
        };
        for c in &statuses.classes {
            let old = current("GatewayClass", &c.namespace, &c.name);
            let mut status = to_value(&c.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            let api: Api<GatewayClass> = Api::all(self.client.clone());
            self.apply(&api, "GatewayClass", c, status, &mut errors)
                .await;
        }
        for g in &statuses.gateways {
            let old = current("Gateway", &g.namespace, &g.name);
            let mut status = to_value(&g.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            for listener in status["listeners"].as_array_mut().into_iter().flatten() {
                let before = find(&old["listeners"], |l| l["name"] == listener["name"]);
                stamp(&mut listener["conditions"], &before["conditions"], &now);
            }
            let api: Api<Gateway> = Api::namespaced(
                self.client.clone(),
                g.namespace.as_deref().unwrap_or_default(),
            );
            self.apply(&api, "Gateway", g, status, &mut errors).await;
        }
        for set in &statuses.listener_sets {
            let old = current("ListenerSet", &set.namespace, &set.name);
            let mut status = to_value(&set.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            for listener in status["listeners"].as_array_mut().into_iter().flatten() {
                let before = find(&old["listeners"], |l| l["name"] == listener["name"]);
                stamp(&mut listener["conditions"], &before["conditions"], &now);
            }
            let api: Api<ListenerSet> = Api::namespaced(
                self.client.clone(),
                set.namespace.as_deref().unwrap_or_default(),
            );
            self.apply(&api, "ListenerSet", set, status, &mut errors)
                .await;
        }
        for r in &statuses.routes {
            let old = current("HTTPRoute", &r.namespace, &r.name);
            let mut ours = to_value(&r.status);
            for parent in ours.as_array_mut().into_iter().flatten() {
                let before = find(&old["parents"], |p| {
                    p["parentRef"] == parent["parentRef"]
                        && p["controllerName"] == parent["controllerName"]
                });
                stamp(&mut parent["conditions"], &before["conditions"], &now);
            }
            // `status.parents` is an atomic list: applying it replaces the whole list, so
            // other controllers' entries are carried over as they are.
            let mut parents: Vec<Value> = old["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["controllerName"] != crate::plan::CONTROLLER_NAME)
                .cloned()
                .collect();
            parents.extend(ours.as_array().cloned().unwrap_or_default());
            let api: Api<HttpRoute> = Api::namespaced(
                self.client.clone(),
                r.namespace.as_deref().unwrap_or_default(),
            );
            self.apply(
                &api,
                "HTTPRoute",
                r,
                json!({ "parents": parents }),
                &mut errors,
            )
            .await;
        }
        for r in &statuses.tenant_routes {
            let old = tenancy
                .routes
                .iter()
                .find(|o| o.metadata.uid == r.uid)
                .map(|o| to_value(&o.status))
                .unwrap_or(Value::Null);
            let mut status = to_value(&r.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            let api: Api<TenantRoute> = Api::namespaced(
                self.client.clone(),
                r.namespace.as_deref().unwrap_or_default(),
            );
            self.apply(&api, "TenantRoute", r, status, &mut errors)
                .await;
        }
        for t in &statuses.tenants {
            let old = tenancy
                .tenants
                .iter()
                .find(|o| o.metadata.uid == t.uid)
                .map(|o| to_value(&o.status))
                .unwrap_or(Value::Null);
            let mut status = to_value(&t.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            let api: Api<Tenant> = Api::all(self.client.clone());
            self.apply(&api, "Tenant", t, status, &mut errors).await;
        }
        for c in &statuses.tenant_certificates {
            let old = tenancy
                .certificates
                .iter()
                .find(|o| o.metadata.uid == c.uid)
                .map(|o| to_value(&o.status))
                .unwrap_or(Value::Null);
            let mut status = to_value(&c.status);
            stamp(&mut status["conditions"], &old["conditions"], &now);
            let api: Api<TenantCertificate> = Api::namespaced(
                self.client.clone(),
                c.namespace.as_deref().unwrap_or_default(),
            );
            self.apply(&api, "TenantCertificate", c, status, &mut errors)
                .await;
        }
        errors
    }

    async fn apply<K, T>(
        &mut self,
        api: &Api<K>,
        kind: &'static str,
        named: &Named<T>,
        status: Value,
        errors: &mut Vec<WriteError>,
    ) where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let id = (
            kind,
            named.uid.clone().unwrap_or_else(|| named.name.clone()),
        );
        if self.written.get(&id) == Some(&status) {
            return;
        }
        let mut metadata = json!({ "name": named.name });
        if let Some(ns) = &named.namespace {
            metadata["namespace"] = json!(ns);
        }
        let api_version = match kind {
            "TenantRoute" | "Tenant" | "TenantCertificate" => TENANCY_API_VERSION,
            _ => API_VERSION,
        };
        let patch = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api
            .patch_status(&named.name, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => {
                self.written.insert(id, status);
            }
            // Deleted since the snapshot: nothing left to report on.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => errors.push(WriteError {
                object: match &named.namespace {
                    Some(ns) => format!("{kind} {ns}/{}", named.name),
                    None => format!("{kind} {}", named.name),
                },
                source,
            }),
        }
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or_default()
}

fn current_status(object: &Object) -> Option<Value> {
    let status = match object {
        Object::GatewayClass(o) => to_value(&o.status),
        Object::Gateway(o) => to_value(&o.status),
        Object::HttpRoute(o) => to_value(&o.status),
        Object::ListenerSet(o) => to_value(&o.status),
        _ => return None,
    };
    Some(status)
}

fn find(list: &Value, pred: impl Fn(&Value) -> bool) -> Value {
    list.as_array()
        .and_then(|l| l.iter().find(|v| pred(v)))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Gives each condition in `new` its `lastTransitionTime`: the old one while the status is
/// the same, `now` otherwise.
fn stamp(new: &mut Value, old: &Value, now: &str) {
    for c in new.as_array_mut().into_iter().flatten() {
        let before = find(old, |o| o["type"] == c["type"]);
        let time = match before.get("lastTransitionTime") {
            Some(t) if before["status"] == c["status"] && t.is_string() => t.clone(),
            _ => json!(now),
        };
        c["lastTransitionTime"] = time;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_keep_time_while_status_holds() {
        let old = json!([
            {"type": "Accepted", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Programmed", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]);
        let mut new = json!([
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "Programmed", "status": "True"},
            {"type": "ResolvedRefs", "status": "True"}
        ]);
        stamp(&mut new, &old, "NOW");
        assert_eq!(new[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(new[1]["lastTransitionTime"], "NOW");
        assert_eq!(new[2]["lastTransitionTime"], "NOW");
    }
}
