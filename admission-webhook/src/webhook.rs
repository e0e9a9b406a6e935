//! The shared state behind every connection: policy, current snapshot, metrics.

use crate::handler::{Reply, handle_review};
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
        let reply = handle_review(&self.policy, snapshot.as_deref(), body);
        self.metrics.record(&reply.outcome, started.elapsed());
        reply
    }

    pub fn render_metrics(&self) -> String {
        self.metrics.render(self.source.is_synced())
    }
}
