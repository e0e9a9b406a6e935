//! The one place config changes: deltas become new table snapshots, published atomically.

use crate::table::{ApplyError, Table};
use arc_swap::ArcSwap;
use gatehouse_core::model::Delta;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub struct ConfigStore {
    /// Random per process: a config source that sees it change knows the proxy restarted
    /// with an empty table and must resend everything.
    pub instance: u64,
    current: ArcSwap<Table>,
    /// Writers are serialised so two deltas never race on the same base snapshot.
    writer: Mutex<()>,
    changed: watch::Sender<u64>,
}

impl Default for ConfigStore {
    fn default() -> Self {
        Self::starting_from(Table::default())
    }
}

impl ConfigStore {
    /// A store whose listeners bind the unspecified address on their port (`--bind-any`).
    pub fn binding_any_address() -> Self {
        Self::starting_from(Table::binding_any_address())
    }

    fn starting_from(table: Table) -> Self {
        Self {
            instance: rand::random(),
            current: ArcSwap::from_pointee(table),
            writer: Mutex::new(()),
            changed: watch::Sender::new(0),
        }
    }

    /// The snapshot a request keeps from start to end.
    pub fn snapshot(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// Applies the delta whole or not at all; on error the serving table is untouched.
    pub fn apply(&self, delta: &Delta) -> Result<u64, ApplyError> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let next = self.current.load().apply(delta)?;
        let version = next.version;
        self.current.store(Arc::new(next));
        self.changed.send_replace(version);
        Ok(version)
    }

    /// Fires after every applied delta (the listener manager rebinds sockets on it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
