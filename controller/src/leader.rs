//! Lease-based leader election: one replica programs the proxies and writes status, the
//! others keep their watch caches warm and take over when the leader's Lease expires.
//!
//! The decision is pure ([`decide`]); the API server's optimistic concurrency
//! (`resourceVersion` on replace) makes two replicas that decide to take over at once end
//! with exactly one holder.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `spec.holderIdentity`.
    pub identity: String,
    /// How long a Lease not renewed stays the holder's.
    pub duration: Duration,
    /// How often the holder renews and a standby checks.
    pub renew_every: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// No Lease yet: create it, holding it.
    Create,
    /// Ours: bump renewTime.
    Renew,
    /// Someone else's and expired (or released): take it.
    TakeOver,
    /// Someone else's and live.
    Follow,
}

/// What to do about `lease` at `now`.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Action {
    let Some(spec) = lease else {
        return Action::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Action::Renew;
    }
    if holder.is_empty() {
        return Action::TakeOver;
    }
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
    let expired = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .is_none_or(|t| t.0 + duration < now);
    if expired {
        Action::TakeOver
    } else {
        Action::Follow
    }
}

/// The spec to write for `action` (none for `Follow`).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    action: Action,
    cfg: &LeaseConfig,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let seconds = i32::try_from(cfg.duration.as_secs()).unwrap_or(i32::MAX);
    let mut spec = current.cloned().unwrap_or_default();
    match action {
        Action::Follow => return None,
        Action::Renew => {}
        Action::Create | Action::TakeOver => {
            spec.holder_identity = Some(cfg.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            if action == Action::TakeOver {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            } else {
                spec.lease_transitions = Some(0);
            }
        }
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    Some(spec)
}

/// Keeps `leading` true exactly while this replica holds the Lease. Runs until dropped.
pub async fn run(api: Api<Lease>, cfg: LeaseConfig, leading: watch::Sender<bool>) {
    // Leadership is given up, not merely unrenewed, when the renewals stop working for a
    // whole lease duration: by then another replica may rightly have taken over.
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        match attempt(&api, &cfg).await {
            Ok(true) => {
                last_renewed = Some(tokio::time::Instant::now());
                if !leading.send_replace(true) {
                    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became the leader");
                }
            }
            Ok(false) => {
                last_renewed = None;
                if leading.send_replace(false) {
                    tracing::warn!(lease = %cfg.name, "lost the lease to another replica");
                }
            }
            Err(e) => {
                tracing::warn!(lease = %cfg.name, "lease update failed: {e}");
                let stale = last_renewed.is_none_or(|t| t.elapsed() >= cfg.duration);
                if stale && leading.send_replace(false) {
                    tracing::warn!(lease = %cfg.name, "stepping down: lease not renewed in time");
                }
            }
        }
        tokio::time::sleep(cfg.renew_every).await;
    }
}

/// One round: Ok(true) when we hold the Lease afterwards.
async fn attempt(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let current = api.get_opt(&cfg.name).await?;
    let now = Timestamp::now();
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let action = decide(spec, &cfg.identity, now);
    let Some(next) = next_spec(spec, action, cfg, now) else {
        return Ok(false);
    };
    let result = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(next),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            // Carries resourceVersion: a concurrent writer makes this a 409.
            lease.spec = Some(next);
            api.replace(&cfg.name, &PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up so a standby need not wait for it to expire.
pub async fn release(api: &Api<Lease>, cfg: &LeaseConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&cfg.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    if let Err(e) = api.replace(&cfg.name, &PostParams::default(), &lease).await {
        tracing::warn!(lease = %cfg.name, "releasing the lease: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: "ns".into(),
            name: "gatehouse-controller".into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(2),
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            acquire_time: Some(MicroTime(at(0))),
            lease_transitions: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn no_lease_is_created_and_ours_is_renewed() {
        assert_eq!(decide(None, "a", at(0)), Action::Create);
        assert_eq!(decide(Some(&held_by("a", 0)), "a", at(100)), Action::Renew);
    }

    #[test]
    fn a_live_lease_of_another_is_followed_until_it_expires() {
        let lease = held_by("a", 10);
        assert_eq!(decide(Some(&lease), "b", at(24)), Action::Follow);
        assert_eq!(decide(Some(&lease), "b", at(25)), Action::Follow);
        assert_eq!(decide(Some(&lease), "b", at(26)), Action::TakeOver);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut lease = held_by("a", 10);
        lease.holder_identity = None;
        assert_eq!(decide(Some(&lease), "b", at(11)), Action::TakeOver);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let lease = held_by("a", 10);
        let taken = next_spec(Some(&lease), Action::TakeOver, &cfg("b"), at(30)).unwrap();
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(30))));
        let renewed = next_spec(Some(&taken), Action::Renew, &cfg("b"), at(32)).unwrap();
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(30))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(32))));
        assert_eq!(
            next_spec(Some(&lease), Action::Follow, &cfg("b"), at(12)),
            None
        );
    }
}
