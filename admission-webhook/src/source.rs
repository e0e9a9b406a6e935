//! The snapshot the server decides against, swapped whole so a request never sees half of
//! an update and never waits for a rebuild.

use arc_swap::ArcSwapOption;
use gatehouse_policy::{Objects, Snapshot};
use std::sync::Arc;

#[derive(Default)]
pub struct SnapshotSource {
    /// `None` until the watch caches have synced once.
    current: ArcSwapOption<Snapshot>,
}

impl SnapshotSource {
    /// A source with no snapshot yet: tenant kinds are refused until [`Self::publish`].
    pub fn unsynced() -> Self {
        Self::default()
    }

    /// A source that never changes, for tests, benchmarks and fuzzing.
    pub fn fixed(objects: Objects) -> Self {
        let source = Self::default();
        source.publish(Snapshot::new(objects));
        source
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Some(Arc::new(snapshot)));
    }

    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn is_synced(&self) -> bool {
        self.current.load().is_some()
    }
}
