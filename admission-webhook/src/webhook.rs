//! The shared state behind every connection: policy, current snapshot, metrics.

use crate::handler::{REASON_NOT_WATCHED, Reply, handle_review_with};
use crate::metrics::Metrics;
use crate::source::SnapshotSource;
use gatehouse_policy::Policy;
use std::sync::Arc;
use std::time::Instant;

pub struct Webhook {
    pub policy: Policy,
    pub source: Arc<SnapshotSource>,
    pub metrics: Arc<Metrics>,
}

impl Webhook {
    pub fn new(policy: Policy, source: Arc<SnapshotSource>) -> Self {
        Self {
            policy,
            source,
            metrics: Arc::new(Metrics::default()),
        }
    }

    pub fn review(&self, body: &[u8]) -> Reply {
        let started = Instant::now();
        let snapshot = self.source.load();
        let unwatched = self.source.unwatched();
        let reply = handle_review_with(&self.policy, snapshot.as_deref(), &unwatched, body);
        if reply.outcome.reason == REASON_NOT_WATCHED {
            // Someone writes the kind, so its CRD exists now: do not wait for the next check.
            self.source.request_recheck();
        }
        self.metrics.record(&reply.outcome, started.elapsed());
        reply
    }

    pub fn render_metrics(&self) -> String {
        self.metrics.render(self.source.is_synced())
    }
}
