//! Status, beside the serving path: the reconcile loop hands each plan over and goes back to
//! the watches at once, and this task computes status from the newest plan and what the
//! proxies acknowledged, then queues the writes. At 10,000 routes computing every status
//! costs tens of milliseconds; a change waiting behind that would reach the proxies later.

use crate::distribute::Registry;
use crate::pass::Planned;
use crate::status;
use crate::tenancy::TenancyObjects;
use crate::writer::StatusWriter;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The last plan and the tenancy objects it was made from.
pub type Reported = Arc<(Planned, TenancyObjects)>;

/// What the reconcile loop hands over: the plan to describe, under a leadership term. A new
/// term (or none: standing by) makes the writer forget what it wrote, since another replica
/// may have written in between.
#[derive(Clone, Default)]
pub struct Handover {
    pub term: u64,
    pub plan: Option<Reported>,
}

pub struct Reporter {
    pub writer: StatusWriter,
    pub registry: Arc<Registry>,
    pub plans: watch::Receiver<Handover>,
    /// A proxy acknowledged, rejected, came or went.
    pub acked: Arc<Notify>,
    /// Acknowledgements are gathered this long after the last report.
    pub debounce: Duration,
}

/// Status may take at most about a third of a core: after a computation that took `cost`,
/// the next waits until twice that has passed. Under load (10,000 routes, an API server on
/// the same cores) this batches many acknowledgements and plans into one computation
/// instead of falling behind.
const IDLE_PER_BUSY: u32 = 2;

impl Reporter {
    /// Runs until the reconcile loop drops its end of `plans`.
    pub async fn run(mut self) {
        let mut term = 0;
        let mut current: Option<Reported> = None;
        let mut not_before = tokio::time::Instant::now();
        let mut writer = self.writer;
        let mut routes = status::RouteStatusMemo::default();
        loop {
            let new_plan = tokio::select! {
                r = self.plans.changed() => r.map(|()| true),
                () = self.acked.notified() => Ok(false),
            };
            let Ok(new_plan) = new_plan else { return };
            if new_plan {
                // The proxies usually acknowledge a plan within milliseconds: waiting for
                // that (at most `debounce`) makes one status computation and one write per
                // object say both Accepted and Programmed, instead of two.
                tokio::select! {
                    () = tokio::time::sleep(self.debounce) => {}
                    () = self.acked.notified() => {}
                }
                tokio::time::sleep_until(not_before).await;
            } else {
                // Acknowledgements are gathered for `debounce` at least.
                let gathered = tokio::time::Instant::now() + self.debounce;
                tokio::time::sleep_until(not_before.max(gathered)).await;
            }
            if self.plans.has_changed().unwrap_or(false) || new_plan {
                let handover = self.plans.borrow_and_update().clone();
                if handover.term != term || handover.plan.is_none() {
                    writer.forget();
                }
                term = handover.term;
                current = handover.plan;
            }
            let Some(plan) = current.clone() else {
                continue;
            };
            let connected = self.registry.connected();
            let started = tokio::time::Instant::now();
            // Off the runtime's workers: they serve the proxy streams meanwhile.
            let done = tokio::task::spawn_blocking(move || {
                let (planned, tenancy_objects) = &*plan;
                let proxies: Vec<status::ProxyAcks<'_>> =
                    connected.iter().map(status::ProxyAcks::from).collect();
                let statuses = planned.statuses(tenancy_objects, &proxies, &mut routes);
                // Queued, not awaited: the proxies never wait for status.
                let queued = writer.write(statuses, &planned.objects, tenancy_objects);
                (writer, routes, queued)
            })
            .await;
            let queued;
            (writer, routes, queued) = match done {
                Ok(done) => done,
                // A bug in the status code: carried to the reconcile loop, which stops.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The runtime is shutting down.
                Err(_) => return,
            };
            let cost = started.elapsed();
            tracing::debug!(
                queued,
                ms = cost.as_secs_f64() * 1000.0,
                "status writes queued"
            );
            not_before = tokio::time::Instant::now() + cost * IDLE_PER_BUSY;
        }
    }
}
