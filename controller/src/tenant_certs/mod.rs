//! TenantCertificates into certificates the proxies serve.
//!
//! Each TenantCertificate becomes one `Certificate` resource that attaches itself to the
//! HTTPS listeners its Tenant is granted, for the hostnames the policy lets the tenant serve
//! and the certificate covers. Adding or renewing one is one upsert on the wire; no Listener
//! changes.
//!
//! A Secret that stops being servable (gone, garbage, expired, wrong key) does not take the
//! certificate away: the last good version this process saw keeps serving while status says
//! why. That memory is per process: after a restart only the Secret as it is counts.

use crate::tenancy::{HostnameVerdict, Tenancy, TenancyObjects, granted_tenant, hostname_verdict};
use gatehouse_core::certificate::{self, LoadedCertificate};
use gatehouse_core::manifest::Object;
use gatehouse_core::model::{
    Certificate, CertificateAttachment, CertificateKey, ListenerKey, ListenerProtocol, Resource,
    ResourceKey, TlsMode,
};
use gatehouse_core::translate::{TLS_SECRET_TYPE, tls_secret_certificate};
use gatehouse_crds::{ListenerGrant, TenantCertificate};
use gatehouse_policy::{ConflictReason, ObjectRef, Snapshot};
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

/// Certificate keys of TenantCertificates are `namespace/tenantcertificate:name`. A Secret
/// name cannot contain `:`, so they never collide with a listener's `namespace/secret`.
pub const CERTIFICATE_PREFIX: &str = "tenantcertificate:";

/// (namespace, name) of a TenantCertificate.
pub type CertId = (String, String);

pub fn certificate_key(ns: &str, name: &str) -> CertificateKey {
    CertificateKey(format!("{ns}/{CERTIFICATE_PREFIX}{name}"))
}

/// What the policy made of one TenantCertificate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CertificateVerdict {
    pub tenant: Option<String>,
    /// Why nothing of it may be served (reason, message), if so.
    pub refused: Option<(&'static str, String)>,
    pub hostnames: Vec<HostnameVerdict>,
    /// The listeners its Tenant is granted.
    pub grants: Vec<ListenerGrant>,
}

pub(crate) fn verdict(
    snapshot: &Snapshot,
    cert: &TenantCertificate,
    ns: &str,
    losses: &[(String, ConflictReason, ObjectRef)],
) -> CertificateVerdict {
    let tenant = match granted_tenant(snapshot, ns) {
        Ok(t) => t,
        Err(r) => {
            return CertificateVerdict {
                tenant: r.tenant,
                refused: r.refused,
                ..Default::default()
            };
        }
    };
    let name = tenant.metadata.name.clone().unwrap_or_default();
    let hostnames: Vec<HostnameVerdict> = cert
        .spec
        .hostnames
        .iter()
        .map(|h| {
            let h = h.as_str().to_ascii_lowercase();
            let verdict = hostname_verdict(&h, losses);
            match snapshot.entitles(&name, &h) {
                // A contest names the winner; that is the more useful reason.
                Err(message) if verdict.held => HostnameVerdict {
                    hostname: h,
                    held: false,
                    reason: "HostnameNotOwned",
                    message,
                },
                _ => verdict,
            }
        })
        .collect();
    let refused = hostnames.iter().all(|h| !h.held).then(|| {
        let first = hostnames.first();
        (
            first.map_or("HostnameNotOwned", |h| h.reason),
            first.map_or_else(String::new, |h| h.message.clone()),
        )
    });
    CertificateVerdict {
        tenant: Some(name),
        refused,
        hostnames,
        grants: tenant.spec.listeners.clone(),
    }
}

/// Why the Secret is not what is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretProblem {
    /// `SecretNotFound`, `InvalidCertificate` or `Expired`.
    pub reason: &'static str,
    pub message: String,
    /// The last good version this process saw is served instead.
    pub serving_last_good: bool,
}

/// What one TenantCertificate comes to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// What the proxies get, if anything.
    pub resource: Option<Certificate>,
    pub served_hostnames: Vec<String>,
    /// Unix seconds, of the certificate served (or of the Secret's, if it loads).
    pub not_after: Option<i64>,
    pub secret_problem: Option<SecretProblem>,
    /// Hostnames the tenant may serve but the certificate does not name.
    pub uncovered: Vec<String>,
    /// Granted HTTPS listeners it attaches to.
    pub listeners: Vec<ListenerKey>,
}

/// A certificate that passed every check, kept so a broken Secret does not replace it.
#[derive(Clone, Debug)]
struct LastGood {
    /// Of the TenantCertificate: a recreated object starts afresh.
    uid: Option<String>,
    cert: Certificate,
    names: Vec<String>,
    not_after: i64,
}

/// The last good certificate of each TenantCertificate, for this process's lifetime.
#[derive(Clone, Debug, Default)]
pub struct Memory(BTreeMap<CertId, LastGood>);

/// Decides every TenantCertificate's outcome at `now` (Unix seconds), updating `memory`.
/// `resources` are the translation's; only its HTTPS listeners are read.
pub fn serve(
    objects: &[Object],
    tenancy_objects: &TenancyObjects,
    tenancy: &Tenancy,
    resources: &gatehouse_core::scope::Config,
    memory: &mut Memory,
    now: i64,
) -> BTreeMap<CertId, Outcome> {
    let secrets: BTreeMap<(&str, &str), &Secret> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Secret(s) => Some((
                (
                    s.metadata.namespace.as_deref().unwrap_or_default(),
                    s.metadata.name.as_deref().unwrap_or_default(),
                ),
                &**s,
            )),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for cert in &tenancy_objects.certificates {
        let id = (
            cert.metadata.namespace.clone().unwrap_or_default(),
            cert.metadata.name.clone().unwrap_or_default(),
        );
        let secret = secrets
            .get(&(id.0.as_str(), cert.spec.secret_name.as_str()))
            .copied();
        let loaded = load_secret(secret, &id.0, &cert.spec.secret_name, now);
        let current = match loaded {
            Ok(good) => {
                let good = LastGood {
                    uid: cert.metadata.uid.clone(),
                    ..good
                };
                memory.0.insert(id.clone(), good.clone());
                Ok(good)
            }
            Err((reason, message)) => {
                let last = memory
                    .0
                    .get(&id)
                    .filter(|l| l.uid == cert.metadata.uid && l.not_after >= now)
                    .cloned();
                Err((reason, message, last))
            }
        };
        let verdict = tenancy.certificates.get(&id);
        out.insert(id.clone(), outcome(&id, verdict, current, resources));
    }
    // Deleted TenantCertificates forget their last good version.
    memory.0.retain(|id, _| out.contains_key(id));
    out
}

type Loaded = Result<LastGood, (&'static str, String, Option<LastGood>)>;

fn outcome(
    (ns, name): &CertId,
    verdict: Option<&CertificateVerdict>,
    current: Loaded,
    resources: &gatehouse_core::scope::Config,
) -> Outcome {
    let (served, secret_problem) = match current {
        Ok(good) => (Some(good), None),
        Err((reason, message, last)) => {
            let serving_last_good = last.is_some();
            (
                last,
                Some(SecretProblem {
                    reason,
                    message,
                    serving_last_good,
                }),
            )
        }
    };
    let mut out = Outcome {
        not_after: served.as_ref().map(|s| s.not_after),
        secret_problem,
        ..Outcome::default()
    };
    let (Some(verdict), Some(served)) = (verdict, served) else {
        return out;
    };
    if verdict.refused.is_some() {
        return out;
    }
    for h in verdict.hostnames.iter().filter(|h| h.held) {
        if certificate::covers(&served.names, &h.hostname) {
            out.served_hostnames.push(h.hostname.clone());
        } else {
            out.uncovered.push(h.hostname.clone());
        }
    }
    out.listeners = granted_https_listeners(&verdict.grants, resources);
    if out.served_hostnames.is_empty() || out.listeners.is_empty() {
        return out;
    }
    out.resource = Some(Certificate {
        key: certificate_key(ns, name),
        attachment: Some(CertificateAttachment {
            listeners: out.listeners.clone(),
            hostnames: out.served_hostnames.clone(),
        }),
        ..served.cert
    });
    out
}

/// The TLS-terminating HTTPS listeners among `grants`, as the translation produced them.
fn granted_https_listeners(
    grants: &[ListenerGrant],
    resources: &gatehouse_core::scope::Config,
) -> Vec<ListenerKey> {
    let mut keys: Vec<ListenerKey> = resources
        .values()
        .filter_map(|r| match r {
            Resource::Listener(l)
                if l.protocol == ListenerProtocol::Https
                    && l.tls.as_ref().is_some_and(|t| t.mode == TlsMode::Terminate) =>
            {
                Some(&l.key)
            }
            _ => None,
        })
        .filter(|key| {
            let mut parts = key.0.splitn(3, '/');
            let (Some(ns), Some(gw), Some(section)) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            grants.iter().any(|g| {
                g.gateway_namespace == ns
                    && g.gateway_name == gw
                    && (g.section_names.is_empty() || g.section_names.iter().any(|s| s == section))
            })
        })
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn load_secret(
    secret: Option<&Secret>,
    ns: &str,
    name: &str,
    now: i64,
) -> Result<LastGood, (&'static str, String)> {
    let Some(secret) = secret else {
        return Err((
            "SecretNotFound",
            format!("spec.secretName: Secret {ns}/{name} (type {TLS_SECRET_TYPE}) not found"),
        ));
    };
    let invalid = |m: String| ("InvalidCertificate", format!("Secret {ns}/{name}: {m}"));
    // The key is set per TenantCertificate when the resource is built.
    let cert = tls_secret_certificate(secret, CertificateKey(String::new()))
        .map_err(|e| invalid(e.to_string()))?;
    match certificate::load(&cert, now) {
        Ok(LoadedCertificate {
            names, not_after, ..
        }) => Ok(LastGood {
            uid: None,
            cert,
            names,
            not_after,
        }),
        Err(e) => {
            let data_key = if e.field == certificate::CERT_FIELD {
                "tls.crt"
            } else {
                "tls.key"
            };
            let reason = if e.is_expired() {
                "Expired"
            } else {
                "InvalidCertificate"
            };
            Err((
                reason,
                format!("Secret {ns}/{name}: {data_key}: {}", e.reason),
            ))
        }
    }
}

/// Adds the served certificates to what the proxies get.
pub fn add_to(resources: &mut gatehouse_core::scope::Config, outcomes: &BTreeMap<CertId, Outcome>) {
    for cert in outcomes.values().filter_map(|o| o.resource.clone()) {
        resources.insert(
            ResourceKey::Certificate(cert.key.clone()),
            Resource::Certificate(cert),
        );
    }
}

#[cfg(test)]
mod tests;
