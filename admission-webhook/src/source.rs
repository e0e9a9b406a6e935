//! The snapshot the server decides against, swapped whole so a request never sees half of
//! an update and never waits for a rebuild.

use arc_swap::{ArcSwap, ArcSwapOption};
use gatehouse_policy::{Kind, Objects, Snapshot};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

#[derive(Default)]
pub struct SnapshotSource {
    /// `None` until the watch caches have synced once.
    current: ArcSwapOption<Snapshot>,
    /// Optional kinds whose CRD was missing at the last check, so nothing of theirs is in
    /// the snapshot: writes of them are refused until their watch has synced.
    unwatched: ArcSwap<Vec<Kind>>,
    builds_started: AtomicU64,
    /// The build number (from [`Self::begin_build`]) of the snapshot in `current`.
    published_build: AtomicU64,
    /// Poked when a review meets an unwatched kind: its CRD exists now, so look again.
    recheck: Notify,
}

impl SnapshotSource {
    /// A source with no snapshot yet: tenant kinds are refused until [`Self::publish`].
    pub fn unsynced() -> Self {
        Self::default()
    }

    /// A source that never changes, for tests, benchmarks and fuzzing.
    pub fn fixed(objects: Objects) -> Self {
        let source = Self::default();
        let build = source.begin_build();
        source.publish(Snapshot::new(objects), build);
        source
    }

    /// Numbers a snapshot build; call before reading the caches it is built from, so that
    /// a snapshot with a higher number saw everything the caches held at this moment.
    pub fn begin_build(&self) -> u64 {
        self.builds_started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The number the next [`Self::begin_build`] will hand out, minus one.
    pub fn builds_started(&self) -> u64 {
        self.builds_started.load(Ordering::SeqCst)
    }

    pub fn publish(&self, snapshot: Snapshot, build: u64) {
        self.publish_arc(Arc::new(snapshot), build);
    }

    pub fn publish_arc(&self, snapshot: Arc<Snapshot>, build: u64) {
        self.current.store(Some(snapshot));
        self.published_build.store(build, Ordering::SeqCst);
    }

    /// The build number of the snapshot requests are decided against now (0: none yet).
    pub fn published_build(&self) -> u64 {
        self.published_build.load(Ordering::SeqCst)
    }

    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn is_synced(&self) -> bool {
        self.current.load().is_some()
    }

    pub fn set_unwatched(&self, kinds: Vec<Kind>) {
        self.unwatched.store(Arc::new(kinds));
    }

    pub fn unwatched(&self) -> Arc<Vec<Kind>> {
        self.unwatched.load_full()
    }

    pub fn request_recheck(&self) {
        self.recheck.notify_one();
    }

    pub async fn recheck_requested(&self) {
        self.recheck.notified().await;
    }
}
