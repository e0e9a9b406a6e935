//! The status write queue: the reconcile loop hands over the newest desired status per
//! object and moves on; a background task sends them, several at a time, off the path that
//! programs the proxies.
//!
//! Per object only the newest desired status is kept (a newer one replaces a queued one),
//! a desired status equal to the last one accepted for the object is dropped before it is
//! queued, failed writes come back after a growing delay unless a newer status replaced
//! them, and [`WriteQueue::forget`] drops everything (a standby must not write, and a later
//! term must not trust what this one wrote).

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub const FIELD_MANAGER: &str = "gatehouse";
const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";
const TENANCY_API_VERSION: &str = "gatehouse.dev/v1alpha1";
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// One object's status, keyed by kind and uid so a recreated object is a new entry.
pub type ObjectId = (&'static str, String);

/// The object a status goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Error)]
#[error("{object}: status: {source}")]
pub struct WriteError {
    /// `HTTPRoute ns/name`.
    pub object: String,
    pub source: kube::Error,
}

/// What the reconcile loop wants an object's status to be.
pub struct Desired {
    pub id: ObjectId,
    pub target: Target,
    /// The status before `lastTransitionTime` stamping: what "unchanged" is judged on.
    pub plain: Value,
}

struct Queued {
    target: Target,
    status: Value,
    attempts: u32,
}

#[derive(Default)]
struct State {
    /// The plain status last accepted per object (queued, in flight or written).
    accepted: HashMap<ObjectId, Value>,
    /// The stamped status last written per object: the base for the next stamping.
    written: HashMap<ObjectId, Value>,
    /// Newest status waiting to be sent, per object.
    queued: HashMap<ObjectId, Queued>,
    /// Objects to send next, in order; each appears once and has an entry in `queued`.
    ready: VecDeque<ObjectId>,
    /// Failed objects waiting out their backoff.
    delayed: BinaryHeap<Reverse<(Instant, ObjectId)>>,
    in_flight: HashSet<ObjectId>,
    /// Bumped by `forget`, so writes of an earlier term are neither recorded nor retried.
    term: u64,
}

impl State {
    fn enqueue(&mut self, id: ObjectId, queued: Queued) {
        let fresh = self.queued.insert(id.clone(), queued).is_none();
        // An object in flight is re-sent when that write returns; a delayed one when its
        // delay ends.
        if fresh && !self.in_flight.contains(&id) {
            self.ready.push_back(id);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
}

/// Cheap to clone; every clone feeds the same task.
#[derive(Clone)]
pub struct WriteQueue {
    shared: Arc<Shared>,
}

impl WriteQueue {
    /// Starts the sending task on `tasks`, with at most `max_in_flight` writes at once.
    pub fn spawn(client: Client, tasks: &mut JoinSet<()>, max_in_flight: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        tasks.spawn(send_loop(client, shared.clone(), max_in_flight.max(1)));
        WriteQueue { shared }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues every desired status that differs from the last one accepted for its object.
    /// `stamp` turns a plain status into the one to send, given the last status this
    /// process wrote for the object (if any); it runs only for changed objects.
    pub fn submit(
        &self,
        desired: impl IntoIterator<Item = Desired>,
        mut stamp: impl FnMut(&Desired, Option<&Value>) -> Value,
    ) -> usize {
        let mut state = self.lock();
        let mut queued = 0;
        for d in desired {
            if state.accepted.get(&d.id) == Some(&d.plain) {
                continue;
            }
            let status = stamp(&d, state.written.get(&d.id));
            state.accepted.insert(d.id.clone(), d.plain);
            state.enqueue(
                d.id,
                Queued {
                    target: d.target,
                    status,
                    attempts: 0,
                },
            );
            queued += 1;
        }
        drop(state);
        if queued > 0 {
            self.shared.wake.notify_one();
        }
        queued
    }

    /// Drops everything queued and everything known to be written; writes in flight are
    /// cancelled.
    pub fn forget(&self) {
        let mut state = self.lock();
        let term = state.term + 1;
        *state = State {
            term,
            ..State::default()
        };
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Writes queued or in flight, for logs and tests.
    pub fn backlog(&self) -> usize {
        let state = self.lock();
        state.queued.len() + state.in_flight.len()
    }
}

struct Outcome {
    term: u64,
    id: ObjectId,
    target: Target,
    status: Value,
    attempts: u32,
    result: Result<(), kube::Error>,
}

async fn send_loop(client: Client, shared: Arc<Shared>, max_in_flight: usize) {
    let queue = WriteQueue {
        shared: shared.clone(),
    };
    let mut flying: JoinSet<Outcome> = JoinSet::new();
    let mut term = 0;
    loop {
        let next_retry = {
            let mut state = queue.lock();
            if state.term != term {
                flying.abort_all();
                term = state.term;
            }
            let now = Instant::now();
            while let Some(Reverse((due, _))) = state.delayed.peek() {
                if *due > now {
                    break;
                }
                let Some(Reverse((_, id))) = state.delayed.pop() else {
                    break;
                };
                if state.queued.contains_key(&id) && !state.in_flight.contains(&id) {
                    state.ready.push_back(id);
                }
            }
            while flying.len() < max_in_flight {
                let Some(id) = state.ready.pop_front() else {
                    break;
                };
                let Some(q) = state.queued.remove(&id) else {
                    continue;
                };
                state.in_flight.insert(id.clone());
                flying.spawn(send(client.clone(), term, id, q));
            }
            state.delayed.peek().map(|Reverse((due, _))| *due)
        };
        let retry = async {
            match next_retry {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(done) = flying.join_next(), if !flying.is_empty() => {
                // An aborted write (a forgotten term) has nothing to record.
                if let Ok(outcome) = done {
                    record(&mut queue.lock(), outcome);
                }
            }
            () = shared.wake.notified() => {}
            () = retry => {}
        }
    }
}

fn record(state: &mut State, outcome: Outcome) {
    if outcome.term != state.term {
        return;
    }
    let Outcome {
        id,
        target,
        status,
        attempts,
        result,
        ..
    } = outcome;
    state.in_flight.remove(&id);
    let newer = state.queued.contains_key(&id);
    match result {
        Ok(()) => {
            state.written.insert(id.clone(), status);
        }
        // Deleted since it was computed: nothing left to report on.
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(source) => {
            let error = WriteError {
                object: target.to_string(),
                source,
            };
            tracing::warn!("{error}; retrying");
            if !newer {
                let queued = Queued {
                    target,
                    status,
                    attempts: attempts + 1,
                };
                let due = Instant::now() + backoff(queued.attempts);
                state.queued.insert(id.clone(), queued);
                state.delayed.push(Reverse((due, id)));
                return;
            }
        }
    }
    if newer {
        state.ready.push_back(id);
    }
}

fn backoff(attempts: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(LAST_RETRY)
}

async fn send(client: Client, term: u64, id: ObjectId, q: Queued) -> Outcome {
    let result = apply_status(&client, &q.target, &q.status).await;
    Outcome {
        term,
        id,
        target: q.target,
        status: q.status,
        attempts: q.attempts,
        result,
    }
}

/// Server-side apply on the status subresource, as our field manager.
async fn apply_status(client: &Client, target: &Target, status: &Value) -> Result<(), kube::Error> {
    let (api_version, plural) = match target.kind {
        "GatewayClass" => (GATEWAY_API_VERSION, "gatewayclasses"),
        "Gateway" => (GATEWAY_API_VERSION, "gateways"),
        "HTTPRoute" => (GATEWAY_API_VERSION, "httproutes"),
        "GRPCRoute" => (GATEWAY_API_VERSION, "grpcroutes"),
        "TLSRoute" => (GATEWAY_API_VERSION, "tlsroutes"),
        "ListenerSet" => (GATEWAY_API_VERSION, "listenersets"),
        "Tenant" => (TENANCY_API_VERSION, "tenants"),
        "TenantRoute" => (TENANCY_API_VERSION, "tenantroutes"),
        "TenantCertificate" => (TENANCY_API_VERSION, "tenantcertificates"),
        other => unreachable!("no status is computed for {other}"),
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, target.kind),
        plural,
    );
    let api: Api<DynamicObject> = match &target.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut metadata = json!({ "name": target.name });
    if let Some(ns) = &target.namespace {
        metadata["namespace"] = json!(ns);
    }
    let patch = json!({
        "apiVersion": api_version,
        "kind": target.kind,
        "metadata": metadata,
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&target.name, &params, &Patch::Apply(&patch))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(name: &str, plain: Value) -> Desired {
        Desired {
            id: ("HTTPRoute", format!("uid-{name}")),
            target: Target {
                kind: "HTTPRoute",
                namespace: Some("ns".into()),
                name: name.into(),
            },
            plain,
        }
    }

    fn queue() -> WriteQueue {
        // No sending task: what is queued stays queued, so the state can be inspected.
        WriteQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Notify::new(),
            }),
        }
    }

    #[test]
    fn newest_status_wins_and_unchanged_is_skipped() {
        let q = queue();
        let stamp = |d: &Desired, _: Option<&Value>| d.plain.clone();
        assert_eq!(
            q.submit([desired("a", json!(1)), desired("b", json!(1))], stamp),
            2
        );
        // Same again: nothing to send.
        assert_eq!(q.submit([desired("a", json!(1))], stamp), 0);
        // A newer status for a queued object replaces it instead of queueing twice.
        assert_eq!(q.submit([desired("a", json!(2))], stamp), 1);
        let state = q.lock();
        assert_eq!(state.ready.len(), 2);
        assert_eq!(
            state.queued[&("HTTPRoute", "uid-a".into())].status,
            json!(2)
        );
    }

    #[test]
    fn failed_write_is_retried_later_unless_replaced() {
        let q = queue();
        let stamp = |d: &Desired, _: Option<&Value>| d.plain.clone();
        q.submit([desired("a", json!(1))], stamp);
        let id: ObjectId = ("HTTPRoute", "uid-a".into());
        let mut state = q.lock();
        let sent = state.queued.remove(&id).unwrap();
        state.ready.clear();
        state.in_flight.insert(id.clone());
        let failure = || {
            kube::Error::Api(
                kube::core::Status::failure("overloaded", "TooManyRequests")
                    .with_code(429)
                    .boxed(),
            )
        };
        record(
            &mut state,
            Outcome {
                term: 0,
                id: id.clone(),
                target: sent.target.clone(),
                status: sent.status.clone(),
                attempts: 0,
                result: Err(failure()),
            },
        );
        assert!(
            state.ready.is_empty(),
            "a failed write waits out its backoff"
        );
        assert_eq!(state.delayed.len(), 1);
        assert_eq!(state.queued[&id].attempts, 1);
        drop(state);

        // A write from an earlier term is not recorded.
        q.forget();
        let mut state = q.lock();
        state.in_flight.insert(id.clone());
        record(
            &mut state,
            Outcome {
                term: 0,
                id: id.clone(),
                target: sent.target,
                status: json!(1),
                attempts: 0,
                result: Ok(()),
            },
        );
        assert!(state.written.is_empty());
    }

    #[test]
    fn backoff_grows_to_a_cap() {
        assert_eq!(backoff(1), FIRST_RETRY);
        assert_eq!(backoff(2), FIRST_RETRY * 2);
        assert_eq!(backoff(40), LAST_RETRY);
    }
}
