//! Gatehouse controller: watches Gateway API objects in a cluster, programs every proxy
//! through its admin API and reports back in the objects' status.
//!
//! Pure parts (`addresses`, `plan`, `status`) decide; `watch`, `proxies` and `writer` do
//! the I/O; `controller` wires them.

pub mod addresses;
pub mod client;
pub mod controller;
pub mod leader;
pub mod plan;
pub mod proxies;
pub mod status;
pub mod tenancy;
#[cfg(test)]
mod testing;
pub mod watch;
pub mod write_queue;
pub mod writer;

pub use controller::{Config, run};
pub use plan::CONTROLLER_NAME;
