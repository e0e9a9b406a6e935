//! What one controller pass costs at N TenantRoutes, stage by stage, without a cluster.
//!
//! Builds the objects `bench/scale` creates (1,000 tenants, each a namespace, a Tenant, a
//! Service and an EndpointSlice; one shared Gateway; N TenantRoutes) and runs the
//! controller's pure pass on them as its reconcile loop does after one route changed.
//! Prints per size `pass N=<n> total_ms=<t>` and one `stage` line per step.
//!
//!   cargo run --release -p gatehouse-bench --bin reconcile_cost -- --sizes 1000,10000

use clap::Parser;
use gatehouse_controller::addresses::Pool;
use gatehouse_controller::pass::{Pass, PassInputs};
use gatehouse_controller::status::RouteStatusMemo;
use gatehouse_controller::tenancy::TenancyObjects;
use gatehouse_controller::watch::PolicyChanges;
use gatehouse_controller::writer::changed;
use gatehouse_core::diff::diff;
use gatehouse_core::manifest::Object;
use gatehouse_core::scope::{Scope, select};
use gatehouse_crds::TenantRoute;
use gatehouse_policy::Change;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Passes per size after the first; the median is printed.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

// As the controller binary: allocation is a large share of a pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INFRA: &str = "gh-scale-infra";
const DOMAIN: &str = "scale.example";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for &n in &args.sizes {
        let (objects, tenancy) = world(n, args.tenants)?;
        let pool: Pool = "127.0.0.250-127.0.0.250".parse()?;
        let mut pass = Pass::new(pool);
        let scope = Scope::parse(&[format!("{INFRA}/shared")])?;
        // The first pass fills the memories (addresses, certificates, written statuses,
        // what the proxy holds); later ones meet the steady state a change meets.
        let warm = pass.plan(PassInputs::new(objects.clone(), &tenancy));
        let mut routes = RouteStatusMemo::default();
        let mut previous = warm.statuses(&tenancy, &[], &mut routes);
        let mut held = select(&warm.plan.translation.resources, &scope);
        let mut held_all = warm.plan.translation.resources.clone();
        let mut totals = Vec::new();
        let mut stages: Vec<Vec<(&'static str, f64)>> = Vec::new();
        for i in 0..args.repeat {
            let mut tenancy = tenancy.clone();
            // One route added (and the previous round's removed), as the watches report it.
            let added: TenantRoute = typed(tenant_route(n + i, args.tenants))?;
            let mut changes = vec![Change::Applied(added.clone().into())];
            if i > 0 {
                let gone: TenantRoute = typed(tenant_route(n + i - 1, args.tenants))?;
                changes.insert(0, Change::Deleted(gone.into()));
            }
            tenancy.routes.push(added.into());
            let t0 = Instant::now();
            // The caches hand out copies, as the loop's pass gets them.
            let (objects, tenancy) = (objects.clone(), tenancy.clone());
            let copied = ms_since(t0);
            let mut planned = pass.plan(PassInputs {
                policy: PolicyChanges::Since(changes),
                ..PassInputs::new(objects, &tenancy)
            });
            let t_status = Instant::now();
            let statuses = planned.statuses(&tenancy, &[], &mut routes);
            planned.timings.push(("status", ms_since(t_status)));
            let t1 = Instant::now();
            // What the writer serialises: only what differs from the last pass.
            let queued = changed(&statuses, &previous).len();
            previous = statuses;
            let serialised = ms_since(t1);
            // What the loop and the distributor do for a proxy serving every Gateway (the
            // shared fleet, and bench/scale): compare with what was published, then the
            // delta against what the proxy holds.
            let t3 = Instant::now();
            let config = &planned.plan.translation.resources;
            let unchanged = *config == held_all;
            let delta_all = diff(&held_all, config);
            assert!(!unchanged && delta_all.upserts.len() <= 3);
            held_all = config.clone();
            let unscoped = ms_since(t3);
            // The pass, its status and the unscoped proxy's delta; a scoped proxy's share
            // is timed apart (one per scoped proxy).
            let total = ms_since(t0);
            // What the distributor does for a scoped proxy: its share, then the delta
            // against what it holds.
            let t2 = Instant::now();
            let config = &planned.plan.translation.resources;
            let share = select(config, &scope);
            let delta = diff(&held, &share);
            let shared = ms_since(t2);
            assert!(
                queued <= 3 && delta.upserts.len() <= 3,
                "one route changed, yet {queued} statuses and {} resources changed",
                delta.upserts.len()
            );
            held = share;
            totals.push(total);
            let mut timings = vec![("copy_caches", copied)];
            timings.append(&mut planned.timings);
            timings.push(("status_json", serialised));
            timings.push(("proxy_delta", unscoped));
            timings.push(("scoped_proxy_share_and_delta", shared));
            stages.push(timings);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!("pass N={n} total_ms={:.1}", median(totals));
        for (k, (name, _)) in stages[0].iter().enumerate() {
            let ms = median(stages.iter().map(|s| s[k].1).collect());
            println!("stage N={n} {name} ms={ms:.1}");
        }
    }
    Ok(())
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn typed<T: DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(v)?)
}

fn tenant_route(i: usize, tenants: usize) -> Value {
    let t = i % tenants;
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
        "metadata": {"name": format!("r{i}"), "namespace": format!("gh-scale-t{t}"),
                     "uid": format!("uid-r{i}"), "generation": 1,
                     // As the API server sets on every object it serves.
                     "resourceVersion": format!("{}", 1000 + i),
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"hostnames": [format!("r{i}.t{t}.{DOMAIN}")],
                 "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
    })
}

fn world(n: usize, tenants: usize) -> anyhow::Result<(Vec<Object>, TenancyObjects)> {
    let mut objects = vec![
        Object::Namespace(typed(json!({"metadata": {"name": INFRA}}))?),
        Object::GatewayClass(typed(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "gatehouse-scale", "generation": 1},
            "spec": {"controllerName": "gatehouse.dev/gateway-controller"},
        }))?),
        Object::Gateway(typed(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "shared", "namespace": INFRA, "generation": 1},
            "spec": {
                "gatewayClassName": "gatehouse-scale",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 18080,
                               "allowedRoutes": {"namespaces": {"from": "All"}}}],
            },
        }))?),
    ];
    let mut tenancy = TenancyObjects::default();
    for t in 0..tenants {
        let ns = format!("gh-scale-t{t}");
        objects.push(Object::Namespace(typed(json!({"metadata": {"name": ns}}))?));
        objects.push(Object::Service(typed(json!({
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }))?));
        objects.push(Object::EndpointSlice(typed(json!({
            "metadata": {"name": "echo-1", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": "echo"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 18999}],
            "endpoints": [{"addresses": ["198.18.0.1"], "conditions": {"ready": true}}],
        }))?));
        tenancy.tenants.push(typed(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": format!("scale-t{t}"), "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "namespaces": {"names": [ns]},
                "domains": [format!("*.t{t}.{DOMAIN}")],
                "listeners": [{"gatewayNamespace": INFRA, "gatewayName": "shared", "sectionNames": ["http"]}],
            },
        }))?);
    }
    for i in 0..n {
        tenancy
            .routes
            .push(std::sync::Arc::new(typed(tenant_route(i, tenants))?));
    }
    Ok((objects, tenancy))
}
