//! Admin-assigned hostname claims, indexed by exact name and by wildcard suffix.
//!
//! A lookup walks the labels of the hostname (at most 127), never the claims: with 10,000
//! tenants it costs the same as with one.

use crate::hostnames::{normalize, parent_suffixes};
use crate::snapshot::TenantId;
use foldhash::HashMap;
use gatehouse_crds::Tenant;

/// How a claim relates to the hostname asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coverage {
    /// Every host the hostname stands for is inside the claim.
    Covers,
    /// The claim is narrower: a wildcard hostname would also serve part of the claim.
    Overlaps,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claimant {
    pub tenant: TenantId,
    pub claim: String,
    pub coverage: Coverage,
}

#[derive(Default)]
pub(crate) struct ClaimIndex {
    /// `shop.example.com` → tenants claiming exactly that name.
    exact: HashMap<String, Vec<TenantId>>,
    /// `example.com` → tenants claiming `*.example.com`.
    wildcard: HashMap<String, Vec<TenantId>>,
    /// `example.com` → every claim strictly below it, exact or wildcard, with its tenant.
    below: HashMap<String, Vec<(TenantId, String)>>,
}

impl ClaimIndex {
    pub fn build(tenants: &[Tenant]) -> Self {
        let mut index = Self::default();
        for (id, tenant) in tenants.iter().enumerate() {
            for claim in &tenant.spec.domains {
                index.insert(id, &normalize(claim.as_str()));
            }
        }
        index
    }

    fn insert(&mut self, tenant: TenantId, claim: &str) {
        let base = match claim.strip_prefix("*.") {
            Some(suffix) => {
                self.wildcard
                    .entry(suffix.to_string())
                    .or_default()
                    .push(tenant);
                suffix
            }
            None => {
                self.exact
                    .entry(claim.to_string())
                    .or_default()
                    .push(tenant);
                claim
            }
        };
        for parent in parent_suffixes(base) {
            self.below
                .entry(parent.to_string())
                .or_default()
                .push((tenant, claim.to_string()));
        }
    }

    /// Every claim that shares at least one host with `hostname` (normalized, exact or
    /// `*.` wildcard), oldest tenant first.
    pub fn claimants(&self, hostname: &str) -> Vec<Claimant> {
        let mut out = Vec::new();
        // The claim's text is built only when someone holds it: most hostnames have
        // several parent suffixes and no claimant at all.
        let covers =
            |out: &mut Vec<Claimant>, ids: Option<&Vec<TenantId>>, claim: &dyn Fn() -> String| {
                for &tenant in ids.into_iter().flatten() {
                    out.push(Claimant {
                        tenant,
                        claim: claim(),
                        coverage: Coverage::Covers,
                    });
                }
            };
        match hostname.strip_prefix("*.") {
            None => {
                covers(&mut out, self.exact.get(hostname), &|| hostname.to_string());
                for parent in parent_suffixes(hostname) {
                    covers(&mut out, self.wildcard.get(parent), &|| {
                        format!("*.{parent}")
                    });
                }
            }
            Some(suffix) => {
                covers(&mut out, self.wildcard.get(suffix), &|| {
                    hostname.to_string()
                });
                for parent in parent_suffixes(suffix) {
                    covers(&mut out, self.wildcard.get(parent), &|| {
                        format!("*.{parent}")
                    });
                }
                for (tenant, claim) in self.below.get(suffix).into_iter().flatten() {
                    out.push(Claimant {
                        tenant: *tenant,
                        claim: claim.clone(),
                        coverage: Coverage::Overlaps,
                    });
                }
            }
        }
        out.sort_by_key(|c| c.tenant);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::tenant;

    fn index() -> ClaimIndex {
        ClaimIndex::build(&[
            tenant("alice")
                .domains(&["shop.example.com", "*.alice.example.com"])
                .build(),
            tenant("bob")
                .domains(&["*.bob.example.com", "api.example.org"])
                .build(),
        ])
    }

    fn owners(index: &ClaimIndex, hostname: &str) -> Vec<(TenantId, Coverage)> {
        index
            .claimants(hostname)
            .into_iter()
            .map(|c| (c.tenant, c.coverage))
            .collect()
    }

    #[test]
    fn claim_lookup_table() {
        use Coverage::*;
        let index = index();
        let cases: &[(&str, &[(TenantId, Coverage)])] = &[
            ("shop.example.com", &[(0, Covers)]),
            ("www.shop.example.com", &[]),
            ("a.alice.example.com", &[(0, Covers)]),
            ("a.b.alice.example.com", &[(0, Covers)]),
            ("alice.example.com", &[]),
            ("*.alice.example.com", &[(0, Covers)]),
            ("*.x.alice.example.com", &[(0, Covers)]),
            (
                "*.example.com",
                &[(0, Overlaps), (0, Overlaps), (1, Overlaps)],
            ),
            ("*.com", &[(0, Overlaps), (0, Overlaps), (1, Overlaps)]),
            ("*.example.org", &[(1, Overlaps)]),
            ("api.example.org", &[(1, Covers)]),
            ("example.org", &[]),
            ("unclaimed.example.net", &[]),
        ];
        for (hostname, want) in cases {
            assert_eq!(owners(&index, hostname), *want, "{hostname}");
        }
    }
}
