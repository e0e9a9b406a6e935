//! One proxy's stream as a state machine, free of I/O: what the proxy holds, the one
//! update in flight, and what comes next when the desired config or an answer arrives.
//!
//! At most one update is in flight: the next is the difference between what the proxy
//! acknowledged and the newest desired config, so a burst of changes while the proxy is
//! busy costs one update, and a NACK leaves a known base to retry from.

use crate::addresses::GatewayKey;
use gatehouse_config_api::{ConfigUpdate, encode_delta};
use gatehouse_core::diff::{diff, order_removals};
use gatehouse_core::model::{Delta, ResourceKey};
use gatehouse_core::scope::{Config, Scope, select};
use std::collections::BTreeSet;
use std::sync::Arc;
use thiserror::Error;

/// What the proxy holds, as far as this controller knows.
#[derive(Clone, Debug)]
pub enum Held {
    /// Exactly this (it acknowledged it, in this controller session).
    Known(Arc<Config>),
    /// Contents unknown (it restarted, or another controller programmed it): these keys.
    Unknown(Vec<ResourceKey>),
}

/// A NACKed update, kept until a later one is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub version: u64,
    pub error: String,
    /// Gateways whose share of the config the rejected update would have changed.
    pub gateways: BTreeSet<GatewayKey>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("ack.version {got}: no update with that version is in flight (expected {expected:?})")]
    UnexpectedAck { got: u64, expected: Option<u64> },
    #[error("nack.version {got}: no update with that version is in flight (expected {expected:?})")]
    UnexpectedNack { got: u64, expected: Option<u64> },
}

#[derive(Debug)]
pub struct Session {
    /// Names this controller process in every update, for the proxy's next Hello.
    session: Arc<str>,
    scope: Scope,
    held: Held,
    in_flight: Option<(u64, Arc<Config>)>,
    /// The newest desired config, already scoped to this proxy.
    desired: Option<Arc<Config>>,
    rejection: Option<(Rejection, Arc<Config>)>,
    /// The last version sent.
    last_version: u64,
    /// The last version the proxy acknowledged.
    acked_version: u64,
}

impl Session {
    /// `last_version` continues a resumed proxy's numbering (0 for a fresh one).
    pub fn new(session: Arc<str>, scope: Scope, held: Held, last_version: u64) -> Self {
        Session {
            session,
            scope,
            held,
            in_flight: None,
            desired: None,
            rejection: None,
            last_version,
            acked_version: last_version,
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The config the proxy acknowledged, when known.
    pub fn acked(&self) -> Option<&Arc<Config>> {
        match &self.held {
            Held::Known(c) => Some(c),
            Held::Unknown(_) => None,
        }
    }

    /// The version of the last update the proxy acknowledged (what a resume starts from).
    pub fn acked_version(&self) -> u64 {
        self.acked_version
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        self.rejection.as_ref().map(|(r, _)| r)
    }

    /// The full desired config changed: the update to send now, if any.
    pub fn desire(&mut self, full: &Arc<Config>) -> Option<ConfigUpdate> {
        let scoped = match self.scope {
            Scope::All => full.clone(),
            Scope::Gateways(_) => Arc::new(select(full, &self.scope)),
        };
        self.desired = Some(scoped);
        self.next()
    }

    pub fn ack(&mut self, version: u64) -> Result<Option<ConfigUpdate>, ProtocolError> {
        match self.in_flight.take() {
            Some((v, config)) if v == version => {
                self.held = Held::Known(config);
                self.acked_version = version;
                self.rejection = None;
                Ok(self.next())
            }
            other => {
                let expected = other.as_ref().map(|(v, _)| *v);
                self.in_flight = other;
                Err(ProtocolError::UnexpectedAck {
                    got: version,
                    expected,
                })
            }
        }
    }

    /// The proxy refused the update and still serves what it held before.
    pub fn nack(
        &mut self,
        version: u64,
        error: String,
    ) -> Result<Option<ConfigUpdate>, ProtocolError> {
        match self.in_flight.take() {
            Some((v, target)) if v == version => {
                let gateways = affected(self.acked().map(Arc::as_ref), &target);
                self.rejection = Some((
                    Rejection {
                        version,
                        error,
                        gateways,
                    },
                    target,
                ));
                Ok(self.next())
            }
            other => {
                let expected = other.as_ref().map(|(v, _)| *v);
                self.in_flight = other;
                Err(ProtocolError::UnexpectedNack {
                    got: version,
                    expected,
                })
            }
        }
    }

    fn next(&mut self) -> Option<ConfigUpdate> {
        if self.in_flight.is_some() {
            return None;
        }
        let want = self.desired.clone()?;
        // The same content again would only be refused again; a new change may fix it.
        if let Some((_, refused)) = &self.rejection
            && **refused == *want
        {
            return None;
        }
        let (delta, snapshot) = match &self.held {
            Held::Known(held) if Arc::ptr_eq(held, &want) || **held == *want => return None,
            Held::Known(held) => (diff(held, &want), false),
            Held::Unknown(keys) => (full_resync(keys, &want), true),
        };
        self.last_version += 1;
        let version = self.last_version;
        self.in_flight = Some((version, want));
        Some(encode_delta(&delta, version, &self.session, snapshot))
    }
}

/// The delta that takes a proxy holding `holds` (contents unknown) to exactly `want`.
pub fn full_resync(holds: &[ResourceKey], want: &Config) -> Delta {
    let mut delta = diff(&Config::new(), want);
    delta.removals = holds
        .iter()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    order_removals(&mut delta.removals);
    delta
}

/// Gateways whose share differs between `before` (unknown: everything counts) and `after`.
fn affected(before: Option<&Config>, after: &Config) -> BTreeSet<GatewayKey> {
    let gateways_of = |config: &Config| -> BTreeSet<GatewayKey> {
        config
            .keys()
            .filter_map(|k| match k {
                ResourceKey::Listener(l) => {
                    let mut parts = l.0.splitn(3, '/');
                    Some((parts.next()?.to_string(), parts.next()?.to_string()))
                }
                _ => None,
            })
            .collect()
    };
    let empty = Config::new();
    let before = before.unwrap_or(&empty);
    let mut all = gateways_of(before);
    all.extend(gateways_of(after));
    if before.is_empty() {
        return all;
    }
    all.into_iter()
        .filter(|(ns, name)| {
            let one = Scope::Gateways([(ns.clone(), name.clone())].into());
            select(before, &one) != select(after, &one)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_config_api::decode_delta;
    use gatehouse_core::model::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn listener(gw: &str, port: u16) -> Resource {
        Resource::Listener(Listener {
            key: ListenerKey::new("ns", gw, "http"),
            version: 0,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            protocol: ListenerProtocol::Http,
            hostname: None,
            tls: None,
        })
    }

    fn route(name: &str, gw: &str) -> Resource {
        Resource::HttpRoute(Arc::new(HttpRoute {
            key: RouteKey::new("ns", name),
            version: 0,
            created_ms: 0,
            hostnames: vec![],
            parents: vec![ListenerKey::new("ns", gw, "http")],
            rules: vec![HttpRule::default()],
        }))
    }

    fn config(resources: &[Resource]) -> Arc<Config> {
        Arc::new(resources.iter().map(|r| (r.key(), r.clone())).collect())
    }

    fn keys(update: &ConfigUpdate) -> (Vec<String>, Vec<String>) {
        let d = decode_delta(update).unwrap();
        (
            d.upserts.iter().map(|r| r.key().to_string()).collect(),
            d.removals.iter().map(ToString::to_string).collect(),
        )
    }

    fn fresh(scope: Scope, holds: Vec<ResourceKey>) -> Session {
        Session::new("s1".into(), scope, Held::Unknown(holds), 0)
    }

    #[test]
    fn first_update_is_a_snapshot_that_removes_leftovers() {
        let stale = route("stale", "a").key();
        let kept = listener("a", 80).key();
        let mut s = fresh(Scope::All, vec![stale, kept]);
        let u = s
            .desire(&config(&[listener("a", 80), route("r", "a")]))
            .unwrap();
        assert!(u.snapshot);
        assert_eq!((u.version, u.session.as_str()), (1, "s1"));
        assert_eq!(
            keys(&u),
            (
                vec!["Listener ns/a/http".into(), "HTTPRoute ns/r".into()],
                vec!["HTTPRoute ns/stale".into()]
            )
        );
        assert!(s.acked().is_none());
        assert_eq!(s.ack(1), Ok(None));
        assert_eq!(s.acked().unwrap().len(), 2);
    }

    #[test]
    fn one_update_in_flight_then_the_difference_to_the_newest() {
        let mut s = fresh(Scope::All, vec![]);
        s.desire(&config(&[listener("a", 80)])).unwrap();
        // Two changes while version 1 is unanswered: nothing sent yet.
        assert!(
            s.desire(&config(&[listener("a", 80), route("x", "a")]))
                .is_none()
        );
        assert!(
            s.desire(&config(&[listener("a", 80), route("y", "a")]))
                .is_none()
        );
        let u = s
            .ack(1)
            .unwrap()
            .expect("the newest config follows the ack");
        assert!(!u.snapshot);
        assert_eq!(u.version, 2);
        assert_eq!(keys(&u), (vec!["HTTPRoute ns/y".into()], vec![]));
        assert_eq!(s.acked_version(), 1);
        assert_eq!(s.ack(2), Ok(None));
        assert_eq!(s.acked_version(), 2);
        // Unchanged desired config sends nothing.
        assert!(
            s.desire(&config(&[listener("a", 80), route("y", "a")]))
                .is_none()
        );
    }

    #[test]
    fn a_nack_keeps_the_old_base_and_is_not_retried_until_something_changes() {
        let base = config(&[listener("a", 80), listener("b", 81)]);
        let mut s = Session::new("s1".into(), Scope::All, Held::Known(base.clone()), 4);
        let bad = config(&[listener("a", 80), listener("b", 81), route("bad", "b")]);
        assert_eq!(s.desire(&bad).unwrap().version, 5);
        assert_eq!(s.nack(5, "boom".into()), Ok(None));
        let r = s.rejection().unwrap();
        assert_eq!((r.version, r.error.as_str()), (5, "boom"));
        assert_eq!(
            r.gateways,
            [("ns".to_string(), "b".to_string())].into(),
            "only b's share changed"
        );
        assert_eq!(s.acked(), Some(&base));
        assert_eq!(s.acked_version(), 4);
        // The same content is not sent again...
        assert!(s.desire(&bad).is_none());
        // ...a fix is, as a difference from what the proxy still holds.
        let fixed = config(&[listener("a", 80), listener("b", 81), route("good", "b")]);
        let u = s.desire(&fixed).unwrap();
        assert_eq!(keys(&u), (vec!["HTTPRoute ns/good".into()], vec![]));
        assert_eq!(s.ack(u.version), Ok(None));
        assert!(s.rejection().is_none());
    }

    #[test]
    fn answers_for_versions_not_in_flight_are_protocol_errors() {
        let mut s = fresh(Scope::All, vec![]);
        assert_eq!(
            s.ack(1),
            Err(ProtocolError::UnexpectedAck {
                got: 1,
                expected: None
            })
        );
        s.desire(&config(&[listener("a", 80)])).unwrap();
        assert!(s.nack(9, "x".into()).is_err());
        // The update in flight survives a stray answer.
        assert_eq!(s.ack(1), Ok(None));
    }

    #[test]
    fn a_scoped_session_sees_only_its_gateways_changes() {
        let scope = Scope::parse(&["ns/a"]).unwrap();
        let mut s = fresh(scope, vec![]);
        let u = s
            .desire(&config(&[
                listener("a", 80),
                listener("b", 81),
                route("rb", "b"),
            ]))
            .unwrap();
        assert_eq!(keys(&u), (vec!["Listener ns/a/http".into()], vec![]));
        s.ack(1).unwrap();
        // A change to b only is no update for a proxy of a.
        let changed_b = config(&[listener("a", 80), listener("b", 82), route("rb", "b")]);
        assert!(s.desire(&changed_b).is_none());
    }

    #[test]
    fn full_resync_removes_dependents_first() {
        let holds = vec![
            listener("old", 80).key(),
            route("old", "old").key(),
            listener("a", 80).key(),
        ];
        let d = full_resync(&holds, &config(&[listener("a", 80)]));
        let removals: Vec<String> = d.removals.iter().map(ToString::to_string).collect();
        assert_eq!(removals, ["HTTPRoute ns/old", "Listener ns/old/http"]);
        assert_eq!(d.upserts.len(), 1);
    }
}
