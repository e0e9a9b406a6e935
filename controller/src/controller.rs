//! The reconcile loop: caches → plan → proxies, then status. The only module that holds
//! the pieces together; every decision it acts on is made by the pure modules.

use crate::addresses::{Assignment, GatewayKey, Pool};
use crate::leader::{self, LeaseConfig};
use crate::plan::plan;
use crate::proxies::{self, Config as ProxyConfig, ProxyHandle};
use crate::status;
use crate::tenancy;
use crate::watch::Caches;
use crate::write_queue::WriteQueue;
use crate::writer::StatusWriter;
use gatehouse_core::manifest::Object;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Status writes sent to the API server at once: enough to keep up with thousands of
/// routes changing together, few enough not to crowd out the watches.
const STATUS_WRITES_IN_FLIGHT: usize = 16;

#[derive(Clone, Debug)]
pub struct Config {
    /// Admin API of every proxy to program.
    pub proxies: Vec<SocketAddr>,
    pub pool: Pool,
    /// Quiet time after a change before reconciling, so a burst of events costs one pass.
    pub debounce: Duration,
    /// Leader election; without it this replica always leads (tests, single replica).
    pub lease: Option<LeaseConfig>,
    /// How often an optional kind whose CRD is not installed is looked for again.
    pub crd_recheck: Duration,
}

/// Runs until the future is dropped; dropping it stops every watch and proxy task.
pub async fn run(client: Client, config: Config) {
    let mut tasks = JoinSet::new();
    let changed = Arc::new(Notify::new());
    let (leading_tx, mut leading) = watch::channel(config.lease.is_none());
    if let Some(lease) = config.lease.clone() {
        let api: Api<Lease> = Api::namespaced(client.clone(), &lease.namespace);
        tasks.spawn(leader::run(api, lease, leading_tx));
    }
    let caches = Caches::start(&client, &mut tasks, &changed, config.crd_recheck);
    tracing::info!("waiting for the watch caches to fill");
    caches.ready().await;
    tracing::info!("watch caches ready");

    let (desired, desired_rx) = watch::channel(None);
    let proxies: Vec<ProxyHandle> = config
        .proxies
        .iter()
        .map(|addr| proxies::spawn(&mut tasks, *addr, desired_rx.clone(), changed.clone()))
        .collect();
    let mut reconciler = Reconciler {
        config,
        desired,
        proxies,
        writer: StatusWriter::new(WriteQueue::spawn(
            client,
            &mut tasks,
            STATUS_WRITES_IN_FLIGHT,
        )),
        memory: BTreeMap::new(),
        reported: BTreeSet::new(),
    };
    loop {
        // A standby keeps its caches warm and touches nothing: no proxy, no status.
        let lead = *leading.borrow_and_update();
        if lead {
            reconciler.reconcile(&caches).await;
        } else {
            reconciler.stand_by();
        }
        tokio::select! {
            () = changed.notified() => {}
            r = leading.changed() => if r.is_err() { std::future::pending::<()>().await },
        }
        tokio::time::sleep(reconciler.config.debounce).await;
    }
}

struct Reconciler {
    config: Config,
    desired: watch::Sender<Option<Arc<ProxyConfig>>>,
    proxies: Vec<ProxyHandle>,
    writer: StatusWriter,
    /// Addresses assigned by this process, ahead of what status says (status may lag).
    memory: BTreeMap<GatewayKey, IpAddr>,
    /// Problems already logged, so a standing problem is logged once.
    reported: BTreeSet<String>,
}

impl Reconciler {
    /// Stops pushing: the proxies keep what they hold until the next leader resyncs them.
    fn stand_by(&mut self) {
        self.desired.send_replace(None);
        // A later term starts from what status says, not from this term's memory.
        self.memory.clear();
        self.writer.forget();
    }

    async fn reconcile(&mut self, caches: &Caches) {
        let mut objects = caches.objects();
        let tenancy_objects = caches.tenancy();
        let tenancy = tenancy::plan(&objects, &tenancy_objects);
        objects.extend(tenancy.routes.iter().cloned().map(Object::HttpRoute));
        let plan = plan(&objects, &self.config.pool, &self.memory);
        self.memory = plan
            .addresses
            .iter()
            .filter_map(|(k, a)| match a {
                Assignment::Assigned(ip) => Some((k.clone(), *ip)),
                _ => None,
            })
            .collect();
        self.log_problems(&plan.translation.problems);

        let resources = &plan.translation.resources;
        self.desired.send_if_modified(|current| {
            if current.as_deref() == Some(resources) {
                return false;
            }
            *current = Some(Arc::new(resources.clone()));
            true
        });

        let acked: Vec<Arc<ProxyConfig>> = self
            .proxies
            .iter()
            .map(|p| p.acked.borrow().clone())
            .collect();
        let acked: Vec<&ProxyConfig> = acked.iter().map(Arc::as_ref).collect();
        let programmed = status::programmed(&plan, &acked);
        let mut statuses = status::compute(&objects, &plan, &programmed);
        let programmed_routes = status::programmed_routes(&plan, &acked);
        statuses.tenant_routes =
            status::route_statuses(&tenancy_objects, &tenancy, &plan, &programmed_routes);
        statuses.tenants = status::tenant_statuses(&tenancy_objects, &tenancy);
        // Queued, not awaited: the proxies never wait for status.
        let queued = self.writer.write(&statuses, &objects, &tenancy_objects);
        tracing::debug!(queued, "status writes queued");
    }

    fn log_problems(&mut self, problems: &[gatehouse_core::translate::Problem]) {
        let now: BTreeSet<String> = problems.iter().map(ToString::to_string).collect();
        for p in now.difference(&self.reported) {
            tracing::warn!("{p}");
        }
        self.reported = now;
    }
}
