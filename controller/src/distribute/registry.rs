//! The proxies connected to this controller, as status reads them, and what each proxy
//! instance last acknowledged, so a stream that drops and comes back resumes with a delta.

use super::session::{Rejection, Session};
use gatehouse_core::scope::{Config, Scope};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// How many disconnected proxy instances are remembered for resuming.
const RESUMABLE: usize = 1024;

/// One connected proxy.
#[derive(Clone, Debug)]
pub struct Connected {
    /// The proxy's per-process id from its Hello.
    pub instance: String,
    pub peer: Option<SocketAddr>,
    pub scope: Scope,
    /// What it acknowledged (`None` until its first snapshot is acknowledged).
    pub acked: Option<Arc<Config>>,
    pub rejection: Option<Rejection>,
}

impl Connected {
    /// How logs and status messages name the proxy.
    pub fn name(&self) -> String {
        match self.peer {
            Some(peer) => format!("{} ({peer})", self.instance),
            None => self.instance.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    connected: BTreeMap<u64, Connected>,
    /// instance → (acknowledged version, config), oldest first for eviction.
    resumable: BTreeMap<String, (u64, Arc<Config>)>,
    order: VecDeque<String>,
}

pub struct Registry {
    inner: Mutex<Inner>,
    /// Wakes the reconciler, whose status reads the registry.
    changed: Arc<Notify>,
}

impl Registry {
    pub fn new(changed: Arc<Notify>) -> Self {
        Registry {
            inner: Mutex::new(Inner::default()),
            changed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every connected proxy.
    pub fn connected(&self) -> Vec<Connected> {
        self.lock().connected.values().cloned().collect()
    }

    /// What `instance` acknowledged at `version`, if this controller remembers it.
    pub fn resume(&self, instance: &str, version: u64) -> Option<Arc<Config>> {
        let inner = self.lock();
        match inner.resumable.get(instance) {
            Some((v, config)) if *v == version => Some(config.clone()),
            _ => None,
        }
    }

    /// Registers a new stream; returns its id.
    pub fn connect(&self, instance: &str, peer: Option<SocketAddr>, session: &Session) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let entry = Connected {
            instance: instance.to_string(),
            peer,
            scope: session.scope().clone(),
            acked: session.acked().cloned(),
            rejection: session.rejection().cloned(),
        };
        inner.connected.insert(id, entry);
        drop(inner);
        self.changed.notify_one();
        id
    }

    /// Records the session's answers after an ACK or NACK.
    pub fn update(&self, id: u64, session: &Session) {
        let mut inner = self.lock();
        let Some(entry) = inner.connected.get_mut(&id) else {
            return;
        };
        entry.acked = session.acked().cloned();
        entry.rejection = session.rejection().cloned();
        let instance = entry.instance.clone();
        if let Some(acked) = session.acked() {
            remember(&mut inner, instance, session.acked_version(), acked.clone());
        }
        drop(inner);
        self.changed.notify_one();
    }

    pub fn disconnect(&self, id: u64) {
        self.lock().connected.remove(&id);
        self.changed.notify_one();
    }
}

fn remember(inner: &mut Inner, instance: String, version: u64, config: Arc<Config>) {
    if inner
        .resumable
        .insert(instance.clone(), (version, config))
        .is_none()
    {
        inner.order.push_back(instance);
        while inner.order.len() > RESUMABLE {
            if let Some(old) = inner.order.pop_front() {
                inner.resumable.remove(&old);
            }
        }
    }
}
