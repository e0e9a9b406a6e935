//! The reconcile loop: caches → plan → proxy streams, then status. The only module that holds
//! the pieces together; every decision it acts on is made by the pure modules.

use crate::addresses::Pool;
use crate::distribute::{self, Distribution, Registry};
use crate::leader::{self, LeaseConfig};
use crate::pass::{Pass, PassInputs};
use crate::provision::{self, apply::Provisioner};
use crate::reporter::{Handover, Reporter};
use crate::watch::Caches;
use crate::write_queue::WriteQueue;
use crate::writer::StatusWriter;
use gatehouse_config_api::ServerTls;
use gatehouse_core::manifest::Object;
use gatehouse_core::scope::Config as ProxyConfig;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("config API (--config-listen {addr}): {source}")]
    ConfigListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Status writes sent to the API server at once: enough to keep up with thousands of
/// routes changing together, few enough not to crowd out the watches.
const STATUS_WRITES_IN_FLIGHT: usize = 16;

/// Plans again even when nothing was watched to change: certificates expire with time.
const REPLAN_AT_LEAST_EVERY: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Config {
    /// Where proxies connect for their config stream.
    pub config_listen: SocketAddr,
    /// mTLS for the config stream; without it the stream is plaintext.
    pub config_tls: Option<ServerTls>,
    pub pool: Pool,
    /// Most time between the end of one pass and the start of the next (never more than
    /// the pass took), so a burst of events costs a few passes; a change after a quiet
    /// spell is not delayed. Acknowledgements are gathered this long between status passes.
    pub debounce: Duration,
    /// Leader election; without it this replica always leads (tests, single replica).
    pub lease: Option<LeaseConfig>,
    /// Config API URL given to provisioned proxies whose class parameters name none.
    pub proxy_controller_url: Option<String>,
    /// How often an optional kind whose CRD is not installed is looked for again.
    pub crd_recheck: Duration,
}

/// Runs until the future is dropped; dropping it stops every watch and proxy stream.
pub async fn run(client: Client, config: Config) -> Result<(), RunError> {
    let mut tasks = JoinSet::new();
    // Watched objects changed / a proxy acknowledged, rejected, came or went.
    let watched = Arc::new(crate::watch::Changes::default());
    let acked = Arc::new(Notify::new());
    let listener = tokio::net::TcpListener::bind(config.config_listen)
        .await
        .map_err(|source| RunError::ConfigListen {
            addr: config.config_listen,
            source,
        })?;
    let (leading_tx, mut leading) = watch::channel(config.lease.is_none());
    let mut lease_api = None;
    if let Some(lease) = config.lease.clone() {
        let api: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
        lease_api = Some((api.clone(), lease.name.clone()));
        tasks.spawn(leader::run(api, lease, leading_tx));
    } else {
        // Kept open: a closed channel would end every stream.
        tasks.spawn(async move {
            leading_tx.closed().await;
        });
    }
    let (desired, desired_rx) = watch::channel(None);
    let registry = Arc::new(Registry::new(acked.clone()));
    let distribution = Distribution::new(registry.clone(), desired_rx, leading.clone(), lease_api);
    tracing::info!(addr = %config.config_listen, "config API listening");
    match &config.config_tls {
        Some(_) => tracing::info!("config API requires client certificates (mTLS)"),
        None if !config.config_listen.ip().is_loopback() => tracing::warn!(
            addr = %config.config_listen,
            "config API is PLAINTEXT and unauthenticated on a non-loopback address: anyone who \
             reaches it can read every TLS private key; set --config-tls-cert, --config-tls-key \
             and --config-client-ca"
        ),
        None => {}
    }
    let tls = config.config_tls.clone();
    tasks.spawn(async move {
        if let Err(e) = distribute::serve(listener, Arc::new(distribution), tls.as_ref()).await {
            tracing::error!("config API stopped: {e}");
        }
    });
    let caches = Caches::start(&client, &mut tasks, &watched, config.crd_recheck);
    tracing::info!("waiting for the watch caches to fill");
    caches.ready().await;
    tracing::info!("watch caches ready");

    let (plans, plans_rx) = watch::channel(Handover::default());
    let writes = WriteQueue::spawn(client.clone(), &mut tasks, STATUS_WRITES_IN_FLIGHT);
    tasks.spawn(
        Reporter {
            writer: StatusWriter::new(writes),
            registry: registry.clone(),
            plans: plans_rx,
            acked,
            debounce: config.debounce,
        }
        .run(),
    );
    let mut reconciler = Reconciler {
        config: config.clone(),
        desired,
        plans,
        term: 0,
        provisioner: Provisioner::new(client.clone()),
        pass: Pass::new(config.pool),
        reported: BTreeSet::new(),
    };
    // Whether watched objects changed since the last plan (acknowledgements are the
    // reporter's: they only need status).
    let mut objects_changed = true;
    let mut planned_at = tokio::time::Instant::now();
    let mut pass_ended = planned_at;
    let mut pass_cost = Duration::ZERO;
    // Changes recorded when the last pass read the caches.
    let mut changes_planned = 0;
    let mut was_leading = false;
    loop {
        // A standby keeps its caches warm and touches nothing: no proxy, no status.
        let lead = *leading.borrow_and_update();
        if !lead {
            reconciler.stand_by();
        } else if objects_changed || planned_at.elapsed() >= REPLAN_AT_LEAST_EVERY {
            if !was_leading {
                reconciler.term += 1;
            }
            planned_at = tokio::time::Instant::now();
            changes_planned = watched.count();
            reconciler.reconcile(&caches).await;
            pass_ended = tokio::time::Instant::now();
            pass_cost = pass_ended - planned_at;
        }
        was_leading = lead;
        objects_changed = false;
        tokio::select! {
            () = watched.notified() => objects_changed = true,
            () = tokio::time::sleep_until(planned_at + REPLAN_AT_LEAST_EVERY) => {}
            // Serving on without status would leave every status stale: stop, as the loop
            // itself would on a bug in the status code, and let the restart resync.
            () = reconciler.plans.closed() => panic!("the status reporter stopped"),
            r = leading.changed() => {
                if r.is_err() { std::future::pending::<()>().await }
                objects_changed = true;
            }
        }
        if objects_changed {
            let changes = watched.count() - changes_planned;
            if let Some(at) =
                gather_until(changes, pass_ended, pass_cost, reconciler.config.debounce)
            {
                tokio::time::sleep_until(at).await;
            }
        }
        // An object change that arrived meanwhile must not wait for another round.
        objects_changed |= watched.pending();
    }
}

/// Until when to gather changes before the next pass, given how many were recorded since
/// the last pass read the caches, when it ended and what it cost. A lone change is served
/// at once: the wait would be part of its apply-to-traffic latency. A burst waits until
/// the last pass is as old as it was long, at most `debounce`: changes arriving while
/// passes run are batched into the next one anyway, and the pause gathers a little more
/// and leaves the API server and the status writes some CPU.
fn gather_until(
    changes: u64,
    ended: tokio::time::Instant,
    cost: Duration,
    debounce: Duration,
) -> Option<tokio::time::Instant> {
    (changes > 1).then(|| ended + cost.min(debounce))
}

struct Reconciler {
    config: Config,
    desired: watch::Sender<Option<Arc<ProxyConfig>>>,
    /// To the reporter: each plan, for status.
    plans: watch::Sender<Handover>,
    /// Leadership terms of this process, counted from 1.
    term: u64,
    provisioner: Provisioner,
    /// Translation and its memories.
    pass: Pass,
    /// Problems already logged, so a standing problem is logged once.
    reported: BTreeSet<String>,
}

impl Reconciler {
    /// Stops distributing: the proxies keep what they hold until the next leader resyncs them.
    fn stand_by(&mut self) {
        self.desired.send_replace(None);
        self.plans.send_if_modified(|h| h.plan.take().is_some());
        self.pass.forget_term();
        self.provisioner.forget();
    }

    async fn reconcile(&mut self, caches: &Caches) {
        // Before the caches: see `Caches::policy_changes`.
        let policy = caches.policy_changes();
        let objects = caches.objects();
        let tenancy_objects = caches.tenancy();
        let resolution = self.provision(&objects, caches).await;
        let inputs = PassInputs {
            objects,
            tenancy: &tenancy_objects,
            resolution: &resolution,
            now: gatehouse_core::certificate::unix_now(),
            policy,
        };
        let planned = self.pass.plan(inputs);
        self.log_problems(&planned.plan.translation.problems);

        let resources = &planned.plan.translation.resources;
        // O(the change): the translation patched the last config, and equal parts are
        // shared, so the comparison skips them.
        self.desired.send_if_modified(|current| {
            if current.as_deref() == Some(resources) {
                return false;
            }
            *current = Some(Arc::new(resources.clone()));
            true
        });
        tracing::debug!(timings = ?planned.timings, "planned");
        let term = self.term;
        self.plans.send_replace(Handover {
            term,
            plan: Some(Arc::new((planned, tenancy_objects))),
        });
    }

    /// In-cluster classes: applies provisioned proxies, removes unwanted ones, and returns
    /// where each in-cluster Gateway's address comes from.
    async fn provision(&mut self, objects: &[Object], caches: &Caches) -> provision::Resolution {
        let (configs, deployments) = caches.provisioning();
        let url = self.config.proxy_controller_url.as_deref();
        let resolution = provision::resolve(objects, &configs, url);
        let services: Vec<_> = objects
            .iter()
            .filter_map(|o| match o {
                Object::Service(s) => Some((**s).clone()),
                _ => None,
            })
            .collect();
        for e in self
            .provisioner
            .sync(&resolution.provisioned, &deployments, &services)
            .await
        {
            tracing::warn!("{e}");
        }
        resolution
    }

    fn log_problems(&mut self, problems: &[gatehouse_core::translate::Problem]) {
        let now: BTreeSet<String> = problems.iter().map(ToString::to_string).collect();
        for p in now.difference(&self.reported) {
            tracing::warn!("{p}");
        }
        self.reported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_change_is_served_at_once_and_a_burst_waits_at_most_the_debounce() {
        let ended = tokio::time::Instant::now();
        let debounce = Duration::from_millis(50);
        let cheap = Duration::from_millis(20);
        let costly = Duration::from_millis(120);
        assert_eq!(gather_until(1, ended, costly, debounce), None);
        // A burst after a cheap pass (1,000 routes) waits as long as the pass took...
        assert_eq!(gather_until(2, ended, cheap, debounce), Some(ended + cheap));
        // ... after a costly one (10,000 routes), the debounce.
        assert_eq!(
            gather_until(500, ended, costly, debounce),
            Some(ended + debounce)
        );
    }
}
