//! The controller's view: who holds each contested hostname, decided the same way every
//! time from the snapshot alone.
//!
//! Admission keeps the world consistent, but two webhook replicas can each admit one of two
//! racing requests, and an admin can reassign a domain that a tenant already serves. Then the
//! controller must pick a winner that does not depend on event order: claims first, then the
//! oldest user by (creationTimestamp, namespace/name).

use crate::claims::Coverage;
use crate::object::ObjectRef;
use crate::snapshot::{Snapshot, TenantId};
use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub hostname: String,
    /// The holder: a Tenant for claimed hostnames, the oldest user for unassigned ones.
    pub winner: ObjectRef,
    /// Everyone else who wants it, oldest first.
    pub losers: Vec<(ObjectRef, ConflictReason)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConflictReason {
    /// Inside another tenant's admin-assigned claim.
    ClaimedByOtherTenant,
    /// Unassigned, and another tenant (or the platform) used it first.
    FirstUsedByOther,
    /// This Tenant's claim overlaps an older Tenant's claim.
    ClaimOverlap,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConflictReason::ClaimedByOtherTenant => "ClaimedByOtherTenant",
            ConflictReason::FirstUsedByOther => "FirstUsedByOther",
            ConflictReason::ClaimOverlap => "ClaimOverlap",
        })
    }
}

/// Every contested hostname in the snapshot, sorted by hostname.
pub fn resolve_conflicts(snapshot: &Snapshot) -> Vec<Conflict> {
    Conflicts::resolve(snapshot)
        .by_hostname
        .into_values()
        .collect()
}

/// [`resolve_conflicts`] kept between snapshots: after [`Snapshot::update`] only the
/// hostnames whose users changed are decided again ([`Conflicts::refresh`]), so a route
/// change costs O(its hostnames) instead of a pass over every used hostname. A Tenant or
/// Namespace change rebuilds the snapshot, and with it this ([`Conflicts::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conflicts {
    /// Overlapping claims: only Tenants move them.
    claims: BTreeMap<String, Conflict>,
    by_hostname: BTreeMap<String, Conflict>,
}

impl Conflicts {
    pub fn resolve(snapshot: &Snapshot) -> Self {
        let mut claims = BTreeMap::new();
        claim_overlaps(snapshot, &mut claims);
        let mut by_hostname = claims.clone();
        // `by_hostname` is ordered, so the index's own order does not show.
        for (hostname, users) in snapshot.usage.by_hostname() {
            usage_conflict(snapshot, hostname, users, &mut by_hostname);
        }
        Conflicts {
            claims,
            by_hostname,
        }
    }

    /// Decides `hostname` again against `snapshot`, whose claims must be the ones this was
    /// resolved against. Returns the conflict it replaced, when it changed (`Some(None)`:
    /// there was none); `None` when nothing changed.
    pub fn refresh(&mut self, snapshot: &Snapshot, hostname: &str) -> Option<Option<Conflict>> {
        let mut fresh = BTreeMap::new();
        if let Some(claim) = self.claims.get(hostname) {
            fresh.insert(hostname.to_string(), claim.clone());
        }
        usage_conflict(
            snapshot,
            hostname,
            snapshot.usage.users(hostname),
            &mut fresh,
        );
        let fresh = fresh.remove(hostname);
        if fresh.as_ref() == self.by_hostname.get(hostname) {
            return None;
        }
        Some(match fresh {
            Some(c) => self.by_hostname.insert(hostname.to_string(), c),
            None => self.by_hostname.remove(hostname),
        })
    }

    pub fn get(&self, hostname: &str) -> Option<&Conflict> {
        self.by_hostname.get(hostname)
    }

    /// Every contested hostname, sorted by hostname.
    pub fn iter(&self) -> impl Iterator<Item = &Conflict> {
        self.by_hostname.values()
    }
}

fn claim_overlaps(snapshot: &Snapshot, out: &mut BTreeMap<String, Conflict>) {
    for (id, tenant) in snapshot.tenants.iter().enumerate() {
        for claim in &tenant.spec.domains {
            let claim = crate::hostnames::normalize(claim.as_str());
            let senior = snapshot
                .claims
                .claimants(&claim)
                .into_iter()
                .find(|c| c.tenant < id);
            if let Some(senior) = senior {
                let loser = (tenant_ref(snapshot, id), ConflictReason::ClaimOverlap);
                add(out, &claim, tenant_ref(snapshot, senior.tenant), loser);
            }
        }
    }
}

fn usage_conflict(
    snapshot: &Snapshot,
    hostname: &str,
    users: &[Usage],
    out: &mut BTreeMap<String, Conflict>,
) {
    if users.is_empty() {
        return;
    }
    let mut usages: Vec<&Usage> = users.iter().collect();
    usages.sort_by(|a, b| (&a.seniority, &a.object).cmp(&(&b.seniority, &b.object)));
    let claimants = snapshot.claims.claimants(hostname);
    let covering = claimants.iter().find(|c| c.coverage == Coverage::Covers);
    if let Some(owner) = covering.or(claimants.first()) {
        let entitled = |t: TenantId| claimants.iter().any(|c| c.tenant == t);
        for usage in &usages {
            // The platform's own objects are the admins' business, not a tenant conflict.
            let Some(t) = usage.tenant else { continue };
            if covering.map_or(!entitled(t), |o| o.tenant != t) {
                let loser = (usage.object.clone(), ConflictReason::ClaimedByOtherTenant);
                add(out, hostname, tenant_ref(snapshot, owner.tenant), loser);
            }
        }
        return;
    }
    let first = usages[0];
    for usage in &usages[1..] {
        if usage.tenant != first.tenant {
            let loser = (usage.object.clone(), ConflictReason::FirstUsedByOther);
            add(out, hostname, first.object.clone(), loser);
        }
    }
}

fn add(
    out: &mut BTreeMap<String, Conflict>,
    hostname: &str,
    winner: ObjectRef,
    loser: (ObjectRef, ConflictReason),
) {
    let conflict = out.entry(hostname.to_string()).or_insert_with(|| Conflict {
        hostname: hostname.to_string(),
        winner,
        losers: Vec::new(),
    });
    if !conflict.losers.contains(&loser) {
        conflict.losers.push(loser);
    }
}

fn tenant_ref(snapshot: &Snapshot, id: TenantId) -> ObjectRef {
    ObjectRef::tenant(snapshot.tenant_name(id))
}
