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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    let mut conflicts: BTreeMap<String, Conflict> = BTreeMap::new();
    claim_overlaps(snapshot, &mut conflicts);
    usage_conflicts(snapshot, &mut conflicts);
    conflicts.into_values().collect()
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

fn usage_conflicts(snapshot: &Snapshot, out: &mut BTreeMap<String, Conflict>) {
    // `out` is ordered by hostname, so the index's own order does not show.
    for (hostname, users) in snapshot.usage.by_hostname() {
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
            continue;
        }
        let first = usages[0];
        for usage in &usages[1..] {
            if usage.tenant != first.tenant {
                let loser = (usage.object.clone(), ConflictReason::FirstUsedByOther);
                add(out, hostname, first.object.clone(), loser);
            }
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
