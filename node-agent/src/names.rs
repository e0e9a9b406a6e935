//! Names of the host objects a pod gets (network namespace, veth, state dir).
//!
//! They are derived from the pod's UID, never from names a tenant chose, and checked
//! against a strict alphabet before they reach any command line, so nothing a pod spec
//! says can become an option or a path of `ip`.

use thiserror::Error;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;
/// Hex digits of the UID hash in derived names: 10 keeps veth names within IFNAMSIZ.
const ID_LEN: usize = 10;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// A host-side name: lowercase ASCII letters, digits and '-', not starting with '-'.
pub fn check(what: &'static str, value: &str, max: usize) -> Result<(), NameError> {
    let invalid = |reason| {
        Err(NameError::Invalid {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return invalid("is empty");
    }
    if value.len() > max {
        return invalid("is too long");
    }
    if value.starts_with('-') {
        return invalid("starts with '-'");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("may only hold a-z, 0-9 and '-'");
    }
    Ok(())
}

/// A bridge or interface name given on the command line.
pub fn check_ifname(what: &'static str, value: &str) -> Result<(), NameError> {
    check(what, value, IFNAME_MAX)
}

/// A pod UID as the API server makes them (RFC 4122 text). Anything else is refused
/// rather than hashed, so a malformed object is noticed.
pub fn check_uid(uid: &str) -> Result<(), NameError> {
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else {
        Err(NameError::Invalid {
            what: "pod UID",
            value: uid.to_string(),
            reason: "is not a UUID",
        })
    }
}

/// Host names for one pod. `id` is a short stable digest of the UID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNames {
    pub id: String,
    /// Network namespace, `<netns prefix><id>`.
    pub netns: String,
    /// Host end of the veth pair, attached to the bridge.
    pub veth_host: String,
    /// Pod end before it moves into the namespace and is renamed eth0.
    pub veth_pod: String,
}

/// Prefixes the agent owns: everything carrying them is swept on startup and shutdown.
#[derive(Clone, Debug)]
pub struct Prefixes {
    pub netns: String,
    pub veth: String,
}

impl Prefixes {
    pub fn new(netns: &str, veth: &str) -> Result<Self, NameError> {
        check("network namespace prefix", netns, 32)?;
        // veth names add ID_LEN digits and one suffix letter.
        check("veth prefix", veth, IFNAME_MAX - ID_LEN - 1)?;
        Ok(Self {
            netns: netns.to_string(),
            veth: veth.to_string(),
        })
    }

    pub fn for_pod(&self, uid: &str) -> Result<PodNames, NameError> {
        check_uid(uid)?;
        let id = short_id(uid);
        let names = PodNames {
            netns: format!("{}{id}", self.netns),
            veth_host: format!("{}{id}h", self.veth),
            veth_pod: format!("{}{id}p", self.veth),
            id,
        };
        check("network namespace", &names.netns, 64)?;
        check_ifname("veth", &names.veth_host)?;
        check_ifname("veth", &names.veth_pod)?;
        Ok(names)
    }
}

/// Whether `name` has exactly the shape of a name `for_pod` makes with `prefix`
/// (`suffixes` lists the allowed trailing characters, empty for none), so that sweeping
/// never touches another agent's bridge or interfaces that merely share a prefix.
pub fn is_ours(prefix: &str, name: &str, suffixes: &[char]) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let id = match rest.chars().last() {
        Some(c) if suffixes.contains(&c) => &rest[..rest.len() - 1],
        _ if suffixes.is_empty() => rest,
        _ => return false,
    };
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Prefixes {
    pub fn is_our_netns(&self, name: &str) -> bool {
        is_ours(&self.netns, name, &[])
    }

    pub fn is_our_veth(&self, name: &str) -> bool {
        is_ours(&self.veth, name, &['h', 'p'])
    }
}

/// FNV-1a of the UID, as ID_LEN hex digits: short enough for interface names, and a
/// collision between two live pods on one node is vanishingly unlikely.
fn short_id(uid: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")[..ID_LEN].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0c5a4e7e-3f0b-4f7c-9a55-2d0c6c1f9a10";

    #[test]
    fn pod_names_fit_interface_limits_and_are_stable() {
        let p = Prefixes::new("ghpod-", "ghp").unwrap();
        let a = p.for_pod(UID).unwrap();
        assert_eq!(a, p.for_pod(UID).unwrap());
        assert!(a.veth_host.len() <= 15 && a.veth_pod.len() <= 15);
        assert!(a.netns.starts_with("ghpod-"));
        assert_ne!(
            a.id,
            p.for_pod("1c5a4e7e-3f0b-4f7c-9a55-2d0c6c1f9a10")
                .unwrap()
                .id
        );
    }

    #[test]
    fn only_names_of_our_exact_shape_are_swept() {
        let p = Prefixes::new("ghpod-", "ghp").unwrap();
        let n = p.for_pod(UID).unwrap();
        assert!(p.is_our_netns(&n.netns));
        assert!(p.is_our_veth(&n.veth_host) && p.is_our_veth(&n.veth_pod));
        // Another agent's bridge and names that only share the prefix are left alone.
        for other in [
            "ghpods0",
            "ghpods1",
            "ghp",
            "ghp0123456789x",
            "ghp0123456789",
            "ghpABCDEF0123h",
        ] {
            assert!(!p.is_our_veth(other), "{other}");
        }
        assert!(!p.is_our_netns("ghpod-test"));
        assert!(!p.is_our_netns("gatehouse-test"));
    }

    #[test]
    fn uid_that_is_not_a_uuid_is_refused() {
        let p = Prefixes::new("ghpod-", "ghp").unwrap();
        for bad in [
            "",
            "--help",
            "0c5a4e7e 3f0b-4f7c-9a55-2d0c6c1f9a10",
            "../../etc/passwd",
        ] {
            assert!(p.for_pod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_that_could_be_options_or_overflow_are_refused() {
        assert!(Prefixes::new("-n", "ghp").is_err());
        assert!(Prefixes::new("ghpod-", "toolong").is_err());
        assert!(Prefixes::new("gh pod", "ghp").is_err());
        assert!(check_ifname("bridge", "ghpods0").is_ok());
        assert!(check_ifname("bridge", "a-bridge-name-too-long").is_err());
    }
}
