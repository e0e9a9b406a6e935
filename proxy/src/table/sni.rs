//! Per-listener certificate index: which of a listener's certificates a TLS server name gets.
//!
//! Entries hold certificate keys, not certificates, so swapping a certificate whose names did
//! not change touches no index at all (the table's certificate map alone changes), and a
//! certificate whose names changed touches only its own names on the listeners that use it.
//! Selection: a certificate naming the server name exactly, then one whose wildcard covers it
//! (one label, as X.509 wildcards do), then the listener's first certificate as its default.

use gatehouse_core::model::CertificateKey;
use std::sync::Arc;

/// The certificates claiming one name, in the listener's certificateRefs order.
type Claims = Arc<[(u32, CertificateKey)]>;

#[derive(Clone, Default)]
pub struct SniIndex {
    exact: imbl::HashMap<Box<str>, Claims>,
    /// `*.example.com` is stored as `.example.com`.
    wildcard: imbl::HashMap<Box<str>, Claims>,
}

fn slot(name: &str) -> (bool, &str) {
    match name.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => (true, suffix),
        _ => (false, name),
    }
}

impl SniIndex {
    fn map(&mut self, wildcard: bool) -> &mut imbl::HashMap<Box<str>, Claims> {
        if wildcard {
            &mut self.wildcard
        } else {
            &mut self.exact
        }
    }

    /// Records that the certificate at position `order` of the listener's refs covers `names`.
    pub fn insert(&mut self, order: u32, key: &CertificateKey, names: &[Box<str>]) {
        for name in names {
            let (wildcard, name) = slot(name);
            let map = self.map(wildcard);
            let mut claims: Vec<(u32, CertificateKey)> = map
                .get(name)
                .map(|c| c.iter().filter(|(_, k)| k != key).cloned().collect())
                .unwrap_or_default();
            claims.push((order, key.clone()));
            claims.sort();
            map.insert(name.into(), claims.into());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    pub fn remove(&mut self, key: &CertificateKey, names: &[Box<str>]) {
        for name in names {
            let (wildcard, name) = slot(name);
            let map = self.map(wildcard);
            let Some(old) = map.get(name) else { continue };
            let claims: Vec<(u32, CertificateKey)> =
                old.iter().filter(|(_, k)| k != key).cloned().collect();
            if claims.is_empty() {
                map.remove(name);
            } else {
                map.insert(name.into(), claims.into());
            }
        }
    }

    /// The certificate for `server_name` (lowercase, no trailing dot), if one names it.
    #[cfg(test)]
    pub fn lookup(&self, server_name: &str) -> Option<&CertificateKey> {
        self.lookup_exact(server_name)
            .or_else(|| self.lookup_wildcard(server_name))
    }

    /// The certificate naming `server_name` exactly.
    pub fn lookup_exact(&self, server_name: &str) -> Option<&CertificateKey> {
        self.exact
            .get(server_name)
            .and_then(|c| c.first())
            .map(|(_, k)| k)
    }

    /// The certificate whose wildcard covers `server_name`.
    pub fn lookup_wildcard(&self, server_name: &str) -> Option<&CertificateKey> {
        let (_, parent) = server_name.split_once('.')?;
        let suffix = &server_name[server_name.len() - parent.len() - 1..];
        self.wildcard
            .get(suffix)
            .and_then(|c| c.first())
            .map(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Box<str>> {
        list.iter().map(|n| Box::from(*n)).collect()
    }

    #[test]
    fn exact_beats_wildcard_and_wildcards_cover_one_label() {
        let mut ix = SniIndex::default();
        ix.insert(0, &"ns/wild".into(), &names(&["*.example.com"]));
        ix.insert(1, &"ns/app".into(), &names(&["app.example.com"]));
        assert_eq!(ix.lookup("app.example.com").unwrap().0, "ns/app");
        assert_eq!(ix.lookup("other.example.com").unwrap().0, "ns/wild");
        assert_eq!(ix.lookup("a.b.example.com"), None);
        assert_eq!(ix.lookup("example.com"), None);
    }

    #[test]
    fn listener_order_breaks_ties_and_removal_falls_back() {
        let mut ix = SniIndex::default();
        ix.insert(1, &"ns/second".into(), &names(&["a.example.com"]));
        ix.insert(0, &"ns/first".into(), &names(&["a.example.com"]));
        assert_eq!(ix.lookup("a.example.com").unwrap().0, "ns/first");
        ix.remove(&"ns/first".into(), &names(&["a.example.com"]));
        assert_eq!(ix.lookup("a.example.com").unwrap().0, "ns/second");
        ix.remove(&"ns/second".into(), &names(&["a.example.com"]));
        assert_eq!(ix.lookup("a.example.com"), None);
    }
}
