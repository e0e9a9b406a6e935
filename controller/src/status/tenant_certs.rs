//! TenantCertificate status, from the policy verdict, what the Secret held and what the
//! proxies acknowledged.
//!
//! Conditions: `Accepted` (may the tenant serve these hostnames), `ResolvedRefs` (is the
//! Secret a valid certificate for them), `Programmed` (every proxy holds what is served) and
//! `Ready` (all three). `status.ready` says whether the proxies serve a certificate for it
//! at all, which stays true while a last good version covers for a broken Secret.

use super::{Condition, Named, generation};
use crate::tenancy::{Tenancy, TenancyObjects};
use crate::tenant_certs::{CertId, Outcome};
use gatehouse_core::certificate::rfc3339;
use gatehouse_core::model::{Resource, ResourceKey};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantCertificateStatus {
    pub observed_generation: i64,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    pub served_hostnames: Vec<String>,
    pub conditions: Vec<Condition>,
}

pub fn certificate_statuses(
    objects: &TenancyObjects,
    tenancy: &Tenancy,
    outcomes: &BTreeMap<CertId, Outcome>,
    proxies: &[super::ProxyAcks<'_>],
) -> Vec<Named<TenantCertificateStatus>> {
    let mut out = Vec::new();
    for cert in &objects.certificates {
        let id = (
            cert.metadata.namespace.clone().unwrap_or_default(),
            cert.metadata.name.clone().unwrap_or_default(),
        );
        let (Some(verdict), Some(outcome)) = (tenancy.certificates.get(&id), outcomes.get(&id))
        else {
            continue;
        };
        let generation = generation(&cert.metadata);
        let refused: Vec<_> = verdict.hostnames.iter().filter(|h| !h.held).collect();
        let accepted = match (&verdict.refused, refused.first()) {
            (Some((reason, message)), _) => {
                Condition::new("Accepted", false, reason, message.clone(), generation)
            }
            (None, Some(first)) => Condition::new(
                "Accepted",
                false,
                first.reason,
                refused
                    .iter()
                    .map(|h| h.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                generation,
            ),
            (None, None) => Condition::new("Accepted", true, "Accepted", "", generation),
        };
        let resolved = match (&outcome.secret_problem, outcome.uncovered.is_empty()) {
            (Some(p), _) => {
                let message = if p.serving_last_good {
                    format!(
                        "{}; still serving the last good certificate (notAfter {})",
                        p.message,
                        outcome.not_after.map(rfc3339).unwrap_or_default()
                    )
                } else {
                    p.message.clone()
                };
                Condition::new("ResolvedRefs", false, p.reason, message, generation)
            }
            (None, false) => Condition::new(
                "ResolvedRefs",
                false,
                "HostnameNotCovered",
                format!(
                    "the certificate's names do not cover {}; it is not served for them",
                    outcome.uncovered.join(", ")
                ),
                generation,
            ),
            (None, true) => Condition::new("ResolvedRefs", true, "ResolvedRefs", "", generation),
        };
        let programmed = match &outcome.resource {
            Some(r) => {
                let key = ResourceKey::Certificate(r.key.clone());
                let want = Resource::Certificate(r.clone());
                let listeners = r.attachment.iter().flat_map(|a| a.listeners.iter());
                let serving: Vec<_> = proxies
                    .iter()
                    .filter(|p| listeners.clone().any(|l| p.scope.serves_listener(l)))
                    .collect();
                let all_acked = serving
                    .iter()
                    .all(|p| p.acked.and_then(|a| a.get(&key)) == Some(&want));
                if !serving.is_empty() && all_acked {
                    Condition::new("Programmed", true, "Programmed", "", generation)
                } else {
                    Condition::new(
                        "Programmed",
                        false,
                        "Pending",
                        "waiting for every proxy serving its listeners to acknowledge the certificate",
                        generation,
                    )
                }
            }
            None => {
                let why = if verdict.refused.is_some() {
                    "the certificate is not accepted".to_string()
                } else if outcome.not_after.is_none() {
                    "no valid certificate to serve".to_string()
                } else if outcome.served_hostnames.is_empty() {
                    "the certificate covers none of the hostnames it may serve".to_string()
                } else {
                    "Tenant is granted no HTTPS listener that terminates TLS".to_string()
                };
                Condition::new("Programmed", false, "NotServed", why, generation)
            }
        };
        let serving = programmed.is_true();
        let first_false = [&accepted, &resolved, &programmed]
            .into_iter()
            .find(|c| !c.is_true());
        let ready = match first_false {
            Some(c) => Condition::new("Ready", false, &c.reason, c.message.clone(), generation),
            None => Condition::new("Ready", true, "Ready", "", generation),
        };
        out.push(Named::new(
            &cert.metadata,
            TenantCertificateStatus {
                observed_generation: generation,
                ready: serving,
                not_after: outcome.not_after.map(rfc3339),
                served_hostnames: if outcome.resource.is_some() {
                    outcome.served_hostnames.clone()
                } else {
                    Vec::new()
                },
                conditions: vec![accepted, resolved, programmed, ready],
            },
        ));
    }
    out
}
