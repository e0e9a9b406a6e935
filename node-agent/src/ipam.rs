//! Pod addresses from one IPv4 range on the node's bridge.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("pod CIDR {0:?}: expected a.b.c.d/len")]
    Syntax(String),
    #[error("pod CIDR {0:?}: prefix length must be 8..=30")]
    Prefix(String),
    #[error("pod CIDR {0}: every address is in use")]
    Exhausted(PodCidr),
}

/// An IPv4 network. The first host address belongs to the bridge (the node's
/// InternalIP and every pod's gateway); pods get the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodCidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for PodCidr {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, IpamError> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| IpamError::Syntax(s.into()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| IpamError::Syntax(s.into()))?;
        let prefix: u8 = len.parse().map_err(|_| IpamError::Syntax(s.into()))?;
        if !(8..=30).contains(&prefix) {
            return Err(IpamError::Prefix(s.into()));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for PodCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl PodCidr {
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }
    fn broadcast(&self) -> u32 {
        u32::from(self.network) | (u32::MAX >> self.prefix)
    }
}

/// Addresses handed out to live pods, lowest free first.
#[derive(Debug)]
pub struct Ipam {
    cidr: PodCidr,
    used: BTreeSet<Ipv4Addr>,
}

impl Ipam {
    pub fn new(cidr: PodCidr) -> Self {
        Self {
            cidr,
            used: BTreeSet::new(),
        }
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let first = u32::from(self.cidr.gateway()) + 1;
        (first..self.cidr.broadcast())
            .map(Ipv4Addr::from)
            .find(|ip| !self.used.contains(ip))
            .inspect(|ip| {
                self.used.insert(*ip);
            })
            .ok_or(IpamError::Exhausted(self.cidr))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_takes_first_host_and_pods_the_rest_until_exhausted() {
        let cidr: PodCidr = "198.19.0.77/29".parse().unwrap();
        assert_eq!(cidr.to_string(), "198.19.0.72/29");
        assert_eq!(cidr.gateway(), Ipv4Addr::new(198, 19, 0, 73));
        let mut ipam = Ipam::new(cidr);
        let got: Vec<_> = (0..5).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(198, 19, 0, 74)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(198, 19, 0, 78)));
        assert_eq!(ipam.allocate(), Err(IpamError::Exhausted(cidr)));
        ipam.release(Ipv4Addr::new(198, 19, 0, 75));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(198, 19, 0, 75));
    }

    #[test]
    fn malformed_cidrs_are_refused() {
        assert!(matches!(
            "198.19.0.0".parse::<PodCidr>(),
            Err(IpamError::Syntax(_))
        ));
        assert!(matches!(
            "198.19.0.0/31".parse::<PodCidr>(),
            Err(IpamError::Prefix(_))
        ));
        assert!(matches!(
            "x/16".parse::<PodCidr>(),
            Err(IpamError::Syntax(_))
        ));
    }
}
