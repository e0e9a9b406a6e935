//! One reconcile pass without I/O: the watched objects in, what the proxies should hold and
//! what status should say out. The reconcile loop feeds it from the caches and acts on the
//! result; `bench`'s `reconcile_cost` times it.

use crate::addresses::{Assignment, GatewayKey, Pool};
use crate::plan::{Plan, plan_remembering};
use crate::provision::Resolution;
use crate::status::{self, ProxyAcks, RouteStatusMemo, Statuses};
use crate::tenancy::{self, Tenancy, TenancyObjects};
use crate::tenant_certs;
use crate::watch::PolicyChanges;
use gatehouse_core::manifest::Object;
use gatehouse_core::translate::Translator;
use gatehouse_policy::Snapshot;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// What a pass reads besides its memories.
pub struct PassInputs<'a> {
    /// The core's kinds, as cached (TenantRoutes' stand-ins are added by the pass). Owned:
    /// the plan keeps them for status, and at 10,000 routes a copy costs milliseconds.
    pub objects: Vec<Object>,
    pub tenancy: &'a TenancyObjects,
    /// Where in-cluster Gateways take their address from.
    pub resolution: &'a Resolution,
    /// Unix seconds, for certificate validity.
    pub now: i64,
    /// What changed among the policy's inputs since the last pass.
    pub policy: PolicyChanges,
}

impl<'a> PassInputs<'a> {
    /// Local mode at the current time: every Gateway takes its address from the pool.
    pub fn new(objects: Vec<Object>, tenancy: &'a TenancyObjects) -> Self {
        static NO_RESOLUTION: std::sync::LazyLock<Resolution> =
            std::sync::LazyLock::new(Resolution::default);
        PassInputs {
            objects,
            tenancy,
            resolution: &NO_RESOLUTION,
            now: gatehouse_core::certificate::unix_now(),
            policy: PolicyChanges::Rebuild,
        }
    }
}

/// What the proxies should hold, and what status needs to describe it.
pub struct Planned {
    /// The inputs plus one HTTPRoute stand-in per served TenantRoute.
    pub objects: Vec<Object>,
    /// The policy's verdicts; its stand-in routes have moved into `objects`.
    pub tenancy: Tenancy,
    pub plan: Plan,
    pub certificates: BTreeMap<tenant_certs::CertId, tenant_certs::Outcome>,
    /// Milliseconds per step, for benchmarks and debug logs.
    pub timings: Vec<(&'static str, f64)>,
}

/// The memories that outlive a pass.
pub struct Pass {
    pool: Pool,
    /// Addresses assigned by this process, ahead of what status says (status may lag).
    addresses: BTreeMap<GatewayKey, IpAddr>,
    /// Last good version of each TenantCertificate, served while its Secret is broken.
    certificates: tenant_certs::Memory,
    /// The tenancy policy's view, kept between passes and updated per change.
    policy: Option<Snapshot>,
    /// Remembers each route's translation, converting again only what changed.
    translator: Translator,
    /// Last pass's verdicts and stand-ins, kept while their inputs are unchanged.
    tenancy: tenancy::Memory,
}

impl Pass {
    pub fn new(pool: Pool) -> Self {
        Pass {
            pool,
            addresses: BTreeMap::new(),
            certificates: tenant_certs::Memory::default(),
            policy: None,
            translator: Translator::new(crate::plan::options()),
            tenancy: tenancy::Memory::default(),
        }
    }

    /// A new leadership term starts from what status says, not from this term's memory,
    /// and from a new policy snapshot.
    pub fn forget_term(&mut self) {
        self.addresses.clear();
        self.policy = None;
        self.tenancy.forget_verdicts();
    }

    pub fn plan(&mut self, inputs: PassInputs<'_>) -> Planned {
        let mut clock = Clock::start();
        let (snapshot, touched) = Self::policy_snapshot(&mut self.policy, &inputs);
        clock.lap("policy_snapshot");
        let mut tenancy = tenancy::plan_with(
            snapshot,
            inputs.tenancy,
            &mut self.tenancy,
            touched.as_ref(),
        );
        clock.lap("tenancy");
        let mut objects = inputs.objects;
        // Moved, not copied: the plan is kept until the next pass, and at 10,000 routes a
        // second copy of every stand-in is megabytes nobody reads.
        objects.extend(
            std::mem::take(&mut tenancy.routes)
                .into_iter()
                .map(Object::HttpRoute),
        );
        clock.lap("objects");
        let mut plan = plan_remembering(
            &objects,
            &self.pool,
            &self.addresses,
            inputs.resolution,
            &mut self.translator,
        );
        clock.lap("translate");
        let certificates = tenant_certs::serve(
            &objects,
            inputs.tenancy,
            &tenancy,
            &plan.translation.resources,
            &mut self.certificates,
            inputs.now,
        );
        tenant_certs::add_to(&mut plan.translation.resources, &certificates);
        clock.lap("tenant_certificates");
        self.addresses = plan
            .addresses
            .iter()
            .filter_map(|(k, a)| match a {
                Assignment::Assigned(ip) => Some((k.clone(), *ip)),
                _ => None,
            })
            .collect();
        Planned {
            objects,
            tenancy,
            plan,
            certificates,
            timings: clock.laps,
        }
    }
}

impl Pass {
    /// The kept snapshot brought up to date, or a new one when a change needs it; with what
    /// the changes moved, when the tenancy can follow them without deciding all again.
    fn policy_snapshot<'p>(
        kept: &'p mut Option<Snapshot>,
        inputs: &PassInputs<'_>,
    ) -> (&'p Snapshot, Option<tenancy::Touched>) {
        let mut touched = tenancy::Touched::default();
        // Whether every change was of a kind the tenancy can follow.
        let mut followed = true;
        let updated = match (kept.take(), &inputs.policy) {
            (Some(mut snapshot), PolicyChanges::Since(changes)) => changes
                .iter()
                .try_for_each(|c| {
                    followed &= touched.update(&mut snapshot, c)?;
                    Ok::<(), gatehouse_policy::RebuildNeeded>(())
                })
                .ok()
                .map(|()| snapshot),
            _ => None,
        };
        followed &= updated.is_some();
        let snapshot = kept
            .insert(updated.unwrap_or_else(|| tenancy::snapshot(&inputs.objects, inputs.tenancy)));
        (snapshot, followed.then_some(touched))
    }
}

impl Planned {
    /// Every status, given what the connected proxies acknowledged. Cheap next to
    /// [`Pass::plan`]: a new acknowledgement needs only this. `routes` remembers the last
    /// TenantRoute statuses, to compute again only those whose inputs moved.
    pub fn statuses(
        &self,
        tenancy_objects: &TenancyObjects,
        proxies: &[ProxyAcks<'_>],
        routes: &mut RouteStatusMemo,
    ) -> Statuses {
        let programming = status::programmed(&self.plan, proxies);
        let mut statuses = status::compute_with(&self.objects, &self.plan, &programming);
        let programmed_routes = status::programmed_routes(&self.plan, proxies);
        statuses.tenant_routes = routes.statuses(&self.tenancy, &self.plan, &programmed_routes);
        statuses.tenants = status::tenant_statuses(tenancy_objects, &self.tenancy);
        statuses.tenant_certificates = status::certificate_statuses(
            tenancy_objects,
            &self.tenancy,
            &self.certificates,
            proxies,
        );
        statuses
    }
}

struct Clock {
    last: Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps
            .push((name, (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }
}
