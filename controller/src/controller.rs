//! The reconcile loop: caches → plan → proxy streams, then status. The only module that holds
//! the pieces together; every decision it acts on is made by the pure modules.

use crate::addresses::{Assignment, GatewayKey, Pool};
use crate::distribute::{self, Distribution, Registry};
use crate::leader::{self, LeaseConfig};
use crate::plan::plan_with;
use crate::provision::{self, apply::Provisioner};
use crate::status;
use crate::tenancy;
use crate::tenant_certs;
use crate::watch::Caches;
use crate::write_queue::WriteQueue;
use crate::writer::StatusWriter;
use gatehouse_core::manifest::Object;
use gatehouse_core::scope::Config as ProxyConfig;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
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

#[derive(Clone, Debug)]
pub struct Config {
    /// Where proxies connect for their config stream.
    pub config_listen: SocketAddr,
    pub pool: Pool,
    /// Quiet time after a change before reconciling, so a burst of events costs one pass.
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
    let changed = Arc::new(Notify::new());
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
    let registry = Arc::new(Registry::new(changed.clone()));
    let distribution = Distribution::new(registry.clone(), desired_rx, leading.clone(), lease_api);
    tracing::info!(addr = %config.config_listen, "config API listening");
    tasks.spawn(async move {
        if let Err(e) = distribute::serve(listener, Arc::new(distribution)).await {
            tracing::error!("config API stopped: {e}");
        }
    });
    let caches = Caches::start(&client, &mut tasks, &changed, config.crd_recheck);
    tracing::info!("waiting for the watch caches to fill");
    caches.ready().await;
    tracing::info!("watch caches ready");

    let mut reconciler = Reconciler {
        config,
        desired,
        registry,
        provisioner: Provisioner::new(client.clone()),
        writer: StatusWriter::new(WriteQueue::spawn(
            client,
            &mut tasks,
            STATUS_WRITES_IN_FLIGHT,
        )),
        memory: BTreeMap::new(),
        reported: BTreeSet::new(),
        certificates: tenant_certs::Memory::default(),
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
    registry: Arc<Registry>,
    writer: StatusWriter,
    provisioner: Provisioner,
    /// Addresses assigned by this process, ahead of what status says (status may lag).
    memory: BTreeMap<GatewayKey, IpAddr>,
    /// Problems already logged, so a standing problem is logged once.
    reported: BTreeSet<String>,
    /// Last good version of each TenantCertificate, served while its Secret is broken.
    certificates: tenant_certs::Memory,
}

impl Reconciler {
    /// Stops distributing: the proxies keep what they hold until the next leader resyncs them.
    fn stand_by(&mut self) {
        self.desired.send_replace(None);
        // A later term starts from what status says, not from this term's memory.
        self.memory.clear();
        self.writer.forget();
        self.provisioner.forget();
    }

    async fn reconcile(&mut self, caches: &Caches) {
        let mut objects = caches.objects();
        let tenancy_objects = caches.tenancy();
        let tenancy = tenancy::plan(&objects, &tenancy_objects);
        objects.extend(tenancy.routes.iter().cloned().map(Object::HttpRoute));
        let resolution = self.provision(&objects, caches).await;
        let mut plan = plan_with(&objects, &self.config.pool, &self.memory, &resolution);
        let certificates = tenant_certs::serve(
            &objects,
            &tenancy_objects,
            &tenancy,
            &plan.translation.resources,
            &mut self.certificates,
            gatehouse_core::certificate::unix_now(),
        );
        tenant_certs::add_to(&mut plan.translation.resources, &certificates);
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

        let connected = self.registry.connected();
        let proxies: Vec<status::ProxyAcks<'_>> =
            connected.iter().map(status::ProxyAcks::from).collect();
        let programming = status::programmed(&plan, &proxies);
        let mut statuses = status::compute_with(&objects, &plan, &programming);
        let programmed_routes = status::programmed_routes(&plan, &proxies);
        statuses.tenant_routes =
            status::route_statuses(&tenancy_objects, &tenancy, &plan, &programmed_routes);
        statuses.tenants = status::tenant_statuses(&tenancy_objects, &tenancy);
        statuses.tenant_certificates =
            status::certificate_statuses(&tenancy_objects, &tenancy, &certificates, &proxies);
        // Queued, not awaited: the proxies never wait for status.
        let queued = self.writer.write(&statuses, &objects, &tenancy_objects);
        tracing::debug!(queued, "status writes queued");
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
                Object::Service(s) => Some(s.clone()),
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
