//! The Gatehouse validating admission webhook: the tenancy policy of `gatehouse-policy`,
//! served over HTTPS to the kube-apiserver.
//!
//! - [`handler::handle_review`] answers one AdmissionReview body; pure, and the fuzz target.
//! - [`server::start`] serves it with a serving certificate that reloads from its files.
//! - `watch` (feature `watch`, on by default) keeps the [`source::SnapshotSource`] current
//!   from kube watch caches.

#[cfg(feature = "watch")]
pub mod cli;
pub mod client;
mod convert;
pub mod handler;
pub mod metrics;
pub mod review;
pub mod server;
pub mod source;
pub mod tls;
#[cfg(feature = "watch")]
pub mod watch;
pub mod webhook;
