//! The Gatehouse tenancy policy: a pure function from (snapshot of the cluster, admission
//! request) to a decision, shared by the admission webhook and the controller so both always
//! agree.
//!
//! - [`Snapshot::new`] indexes the current objects once (hostname claims by exact name and
//!   wildcard suffix, hostname users, per-tenant counts, namespace tenancy).
//! - [`Policy::decide`] answers one [`Request`] with a [`Decision`].
//! - [`resolve_conflicts`] gives the controller a stable winner for every contested hostname.
//! - [`attacks`] is the tenant-attack matrix, as data, for this crate's tests and the
//!   webhook's end-to-end tests.

pub mod attacks;
mod claims;
mod conflicts;
mod decision;
mod engine;
mod hostnames;
mod listeners;
mod namespaces;
mod object;
mod quotas;
mod references;
mod request;
mod rule;
mod selector;
mod snapshot;
mod tenancy;
mod tenant_objects;
mod tenants;
pub mod testkit;
mod usage;
mod view;

pub use conflicts::{Conflict, ConflictReason, Conflicts, resolve_conflicts};
pub use decision::{Decision, DenyReason};
pub use engine::Policy;
pub use object::{Kind, Object, ObjectRef};
pub use request::{Admins, Operation, Request, SYSTEM_MASTERS, UserInfo};
pub use snapshot::{Change, NamespaceTenant, Objects, RebuildNeeded, Snapshot, TenantUsage};
