//! Local-mode Gateway addresses: one address per Gateway out of a configured range.
//!
//! Pure: the caller passes what each Gateway asks for and what it had before (its status,
//! or this process's memory), and gets the assignment back. Previous assignments are
//! honoured first so a controller restart never moves a Gateway to another address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use thiserror::Error;

/// `(namespace, name)` of a Gateway.
pub type GatewayKey = (String, String);

/// An inclusive IPv4 range, e.g. `127.0.0.10-127.0.0.200`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    first: u32,
    last: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("--address-pool {value:?}: {reason}")]
pub struct PoolError {
    pub value: String,
    pub reason: &'static str,
}

impl FromStr for Pool {
    type Err = PoolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PoolError {
            value: s.to_string(),
            reason,
        };
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let parse = |v: &str| {
            v.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| err("expected FIRST-LAST IPv4 addresses"))
        };
        let (first, last) = (u32::from(parse(a)?), u32::from(parse(b)?));
        if first > last {
            return Err(err("the first address is after the last"));
        }
        Ok(Pool { first, last })
    }
}

impl Pool {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => (self.first..=self.last).contains(&u32::from(v4)),
            IpAddr::V6(_) => false,
        }
    }

    fn iter(&self) -> impl Iterator<Item = IpAddr> {
        (self.first..=self.last).map(|n| IpAddr::V4(Ipv4Addr::from(n)))
    }
}

/// What a Gateway's `spec.addresses` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    Any,
    Specific(IpAddr),
    /// Not something this mode can give (a Hostname, a malformed IP): `field` and `reason`
    /// go to the Gateway's Accepted condition.
    Unsupported {
        field: String,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub gateway: GatewayKey,
    pub requested: Requested,
    /// The address the Gateway held before, if any.
    pub previous: Option<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    Assigned(IpAddr),
    /// Accepted=False/UnsupportedAddress.
    Unsupported {
        field: String,
        reason: String,
    },
    /// A specific address outside the pool: Programmed=False/AddressNotUsable.
    NotUsable(IpAddr),
    /// Programmed=False/AddressNotAssigned.
    Exhausted,
    /// In-cluster modes (see `provision`): the Service has no address yet, for the reason
    /// given. Programmed=False/AddressNotAssigned.
    Awaiting(String),
    /// The class's parameters are unusable: Accepted=False/InvalidParameters.
    InvalidParameters(String),
}

impl Assignment {
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Assignment::Assigned(ip) => Some(*ip),
            _ => None,
        }
    }
}

/// Assigns in three passes: explicit requests (which may share an address: their authors
/// asked for it), then previous holders, then everyone else in `requests` order, lowest
/// free address first.
pub fn assign(pool: &Pool, requests: &[Request]) -> BTreeMap<GatewayKey, Assignment> {
    let mut out = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for r in requests {
        match &r.requested {
            Requested::Specific(ip) if pool.contains(*ip) => {
                taken.insert(*ip);
                out.insert(r.gateway.clone(), Assignment::Assigned(*ip));
            }
            Requested::Specific(ip) => {
                out.insert(r.gateway.clone(), Assignment::NotUsable(*ip));
            }
            Requested::Unsupported { field, reason } => {
                let a = Assignment::Unsupported {
                    field: field.clone(),
                    reason: reason.clone(),
                };
                out.insert(r.gateway.clone(), a);
            }
            Requested::Any => {}
        }
    }
    let wanting: Vec<&Request> = requests
        .iter()
        .filter(|r| r.requested == Requested::Any)
        .collect();
    for r in &wanting {
        if let Some(ip) = r
            .previous
            .filter(|ip| pool.contains(*ip) && !taken.contains(ip))
        {
            taken.insert(ip);
            out.insert(r.gateway.clone(), Assignment::Assigned(ip));
        }
    }
    let mut free = pool.iter().filter(|ip| !taken.contains(ip));
    for r in wanting {
        if out.contains_key(&r.gateway) {
            continue;
        }
        let a = free
            .next()
            .map_or(Assignment::Exhausted, Assignment::Assigned);
        out.insert(r.gateway.clone(), a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> GatewayKey {
        ("ns".to_string(), name.to_string())
    }

    fn any(name: &str, previous: Option<&str>) -> Request {
        Request {
            gateway: key(name),
            requested: Requested::Any,
            previous: previous.map(|p| p.parse().unwrap()),
        }
    }

    fn ip(s: &str) -> Assignment {
        Assignment::Assigned(s.parse().unwrap())
    }

    #[test]
    fn parses_ranges() {
        let pool: Pool = "127.0.0.10-127.0.0.12".parse().unwrap();
        assert_eq!(pool.iter().count(), 3);
        assert!(pool.contains("127.0.0.12".parse().unwrap()));
        assert!(!pool.contains("127.0.0.13".parse().unwrap()));
        assert!(!pool.contains("::1".parse().unwrap()));
        assert_eq!("127.0.0.5".parse::<Pool>().unwrap().iter().count(), 1);
        let err = "127.0.0.9-127.0.0.1".parse::<Pool>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "--address-pool \"127.0.0.9-127.0.0.1\": the first address is after the last"
        );
        assert!("a-b".parse::<Pool>().is_err());
    }

    #[test]
    fn hands_out_lowest_free_in_order() {
        let pool = "127.0.0.10-127.0.0.200".parse().unwrap();
        let out = assign(&pool, &[any("a", None), any("b", None)]);
        assert_eq!(out[&key("a")], ip("127.0.0.10"));
        assert_eq!(out[&key("b")], ip("127.0.0.11"));
    }

    #[test]
    fn previous_assignments_survive_even_when_a_lower_one_frees_up() {
        let pool = "127.0.0.10-127.0.0.200".parse().unwrap();
        let out = assign(&pool, &[any("new", None), any("old", Some("127.0.0.11"))]);
        assert_eq!(out[&key("old")], ip("127.0.0.11"));
        assert_eq!(out[&key("new")], ip("127.0.0.10"));
    }

    #[test]
    fn specific_requests_win_over_previous_holders() {
        let pool = "127.0.0.10-127.0.0.11".parse().unwrap();
        let specific = Request {
            gateway: key("s"),
            requested: Requested::Specific("127.0.0.10".parse().unwrap()),
            previous: None,
        };
        let out = assign(&pool, &[any("old", Some("127.0.0.10")), specific]);
        assert_eq!(out[&key("s")], ip("127.0.0.10"));
        assert_eq!(out[&key("old")], ip("127.0.0.11"));
    }

    #[test]
    fn outside_pool_unsupported_and_exhausted() {
        let pool = "127.0.0.10-127.0.0.10".parse().unwrap();
        let outside = Request {
            gateway: key("far"),
            requested: Requested::Specific("10.0.0.1".parse().unwrap()),
            previous: None,
        };
        let hostname = Request {
            gateway: key("h"),
            requested: Requested::Unsupported {
                field: "spec.addresses[0].type".into(),
                reason: "Hostname is not supported".into(),
            },
            previous: None,
        };
        let out = assign(&pool, &[outside, hostname, any("a", None), any("b", None)]);
        assert_eq!(
            out[&key("far")],
            Assignment::NotUsable("10.0.0.1".parse().unwrap())
        );
        assert!(matches!(out[&key("h")], Assignment::Unsupported { .. }));
        assert_eq!(out[&key("a")], ip("127.0.0.10"));
        assert_eq!(out[&key("b")], Assignment::Exhausted);
    }
}
