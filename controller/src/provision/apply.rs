//! Server-side apply of provisioned proxies, and removal of the ones no Gateway wants any
//! more. Touches only objects carrying our label and a Gateway controller reference.

use super::Rendered;
use super::render::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::addresses::GatewayKey;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use thiserror::Error;

/// Field manager of every apply, so `kubectl get -o yaml --show-managed-fields` says who.
pub const FIELD_MANAGER: &str = "gatehouse";

#[derive(Debug, Error)]
pub enum ProvisionError {
    #[error("{kind} {namespace}/{name}: cannot apply: {source}")]
    Apply {
        kind: &'static str,
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "{kind} {namespace}/{name}: exists and was not created by Gatehouse; left alone \
         (delete or rename it to let the Gateway be provisioned)"
    )]
    NotOurs {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{kind} {namespace}/{name}: cannot delete: {source}")]
    Delete {
        kind: &'static str,
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// Label selector of everything we create, for the watch caches.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY}")
}

pub struct Provisioner {
    client: Client,
    /// What was last applied per object, so an unchanged Gateway costs no API call.
    applied: BTreeMap<(&'static str, String, String), serde_json::Value>,
}

impl Provisioner {
    pub fn new(client: Client) -> Self {
        Provisioner {
            client,
            applied: BTreeMap::new(),
        }
    }

    /// Forget what was applied: a new leadership term re-applies everything once.
    pub fn forget(&mut self) {
        self.applied.clear();
    }

    /// Applies `desired` and deletes those of `deployments`/`services` (our labelled ones,
    /// from the watch caches) no Gateway wants any more.
    pub async fn sync(
        &mut self,
        desired: &BTreeMap<GatewayKey, Rendered>,
        deployments: &[Deployment],
        services: &[Service],
    ) -> Vec<ProvisionError> {
        let mut errors = Vec::new();
        let known: BTreeSet<(String, String)> = deployments
            .iter()
            .map(|d| (d.namespace().unwrap_or_default(), d.name_any()))
            .collect();
        for r in desired.values() {
            let deployment = &r.deployment;
            let at = (
                deployment.namespace().unwrap_or_default(),
                deployment.name_any(),
            );
            // A Deployment of that name without our label is not in the cache: look before
            // applying over someone else's object.
            if !known.contains(&at)
                && !self
                    .applied
                    .contains_key(&("Deployment", at.0.clone(), at.1.clone()))
            {
                match self.exists::<Deployment>(&at.0, &at.1).await {
                    Ok(false) => {}
                    Ok(true) => {
                        errors.push(ProvisionError::NotOurs {
                            kind: "Deployment",
                            namespace: at.0,
                            name: at.1,
                        });
                        continue;
                    }
                    Err(source) => {
                        errors.push(ProvisionError::Apply {
                            kind: "Deployment",
                            namespace: at.0,
                            name: at.1,
                            source,
                        });
                        continue;
                    }
                }
            }
            if let Err(e) = self.apply("Deployment", deployment).await {
                errors.push(e);
            }
            // The Service was checked against the cache by `resolve`.
            if let Err(e) = self.apply("Service", &r.service).await {
                errors.push(e);
            }
        }

        let wanted: BTreeSet<(String, String)> = desired
            .values()
            .map(|r| {
                let m = &r.service.metadata;
                (
                    m.namespace.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        for d in deployments
            .iter()
            .filter(|d| ours(*d) && !wanted.contains(&at(*d)))
        {
            if let Err(e) = self.delete("Deployment", d).await {
                errors.push(e);
            }
        }
        for s in services
            .iter()
            .filter(|s| ours(*s) && !wanted.contains(&at(*s)))
        {
            if let Err(e) = self.delete("Service", s).await {
                errors.push(e);
            }
        }
        errors
    }

    async fn exists<K>(&self, namespace: &str, name: &str) -> Result<bool, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_metadata_opt(name).await?.is_some())
    }

    async fn apply<K>(&mut self, kind: &'static str, object: &K) -> Result<(), ProvisionError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
    {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let mut body = serde_json::to_value(object).unwrap_or_default();
        body["apiVersion"] = K::api_version(&()).into();
        body["kind"] = K::kind(&()).into();
        let key = (kind, namespace.clone(), name.clone());
        if self.applied.get(&key) == Some(&body) {
            return Ok(());
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        // Forced: these objects are ours; a hand edit of a field we set is put back.
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| ProvisionError::Apply {
            kind,
            namespace,
            name,
            source,
        })?;
        tracing::info!(kind, object = %format!("{}/{}", key.1, key.2), "provisioned proxy object applied");
        self.applied.insert(key, body);
        Ok(())
    }

    async fn delete<K>(&mut self, kind: &'static str, object: &K) -> Result<(), ProvisionError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        // The uid precondition: never delete a same-named object created since the cache saw ours.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: object.uid(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        self.applied
            .remove(&(kind, namespace.clone(), name.clone()));
        match api.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(kind, object = %format!("{namespace}/{name}"), "provisioned proxy object removed");
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(ProvisionError::Delete {
                kind,
                namespace,
                name,
                source,
            }),
        }
    }
}

fn at<K: Resource>(o: &K) -> (String, String) {
    (
        o.meta().namespace.clone().unwrap_or_default(),
        o.meta().name.clone().unwrap_or_default(),
    )
}

/// Our label and a controller reference to a Gateway: both, so a user's object that merely
/// copied our label is never deleted.
fn ours<K: Resource>(o: &K) -> bool {
    let m = o.meta();
    m.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
        && m.owner_references.iter().flatten().any(|r| {
            r.kind == "Gateway"
                && r.api_version.starts_with("gateway.networking.k8s.io/")
                && r.controller == Some(true)
        })
}
