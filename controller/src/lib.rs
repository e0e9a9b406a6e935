//! Gatehouse controller: watches Gateway API objects in a cluster, streams every connected
//! proxy its share of the config and reports back in the objects' status.
//!
//! Pure parts (`addresses`, `plan`, `status`) decide; `watch`, `distribute` and `writer` do
//! the I/O; `controller` wires them.

pub mod addresses;
pub mod client;
pub mod controller;
pub mod distribute;
pub mod leader;
pub mod pass;
pub mod plan;
pub mod provision;
pub mod reporter;
pub mod status;
pub mod tenancy;
pub mod tenant_certs;
#[cfg(test)]
mod testing;
pub mod watch;
pub mod write_queue;
pub mod writer;

pub use controller::{Config, RunError, run};
pub use plan::CONTROLLER_NAME;
