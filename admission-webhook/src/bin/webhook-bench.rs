//! Decision latency as the apiserver sees it: a snapshot of 10,000 tenants and 100,000
//! routes, AdmissionReviews over HTTPS keep-alive from concurrent clients. Run through
//! `bench-webhook`, which makes the throwaway certificates.

use anyhow::{Context, ensure};
use clap::Parser;
use gatehouse_admission_webhook::client::HttpsClient;
use gatehouse_admission_webhook::metrics::quantile_from_text;
use gatehouse_admission_webhook::server::{self, ServerConfig};
use gatehouse_admission_webhook::source::SnapshotSource;
use gatehouse_admission_webhook::tls::CertFiles;
use gatehouse_admission_webhook::webhook::Webhook;
use gatehouse_policy::testkit::{route, scale_world, tenant_user};
use gatehouse_policy::{Admins, Change, Object, Objects, Policy, Request, Snapshot};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    ca: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    #[arg(long, default_value_t = 10)]
    routes_per_tenant: usize,
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

/// Every other request is a hijack of the next tenant's route, so both verdicts are timed.
fn request(i: usize, tenants: usize) -> (Vec<u8>, bool) {
    let t = (i * 7919) % tenants;
    let victim = (t + 1) % tenants;
    let hostnames = [
        format!("new{i}.t{t}.example.com"),
        format!("r0.t{victim}.example.com"),
    ];
    let allowed = i.is_multiple_of(2);
    let h: Vec<&str> = hostnames[..if allowed { 1 } else { 2 }]
        .iter()
        .map(String::as_str)
        .collect();
    let object = Object::TenantRoute(
        route(&format!("t{t}"), &format!("n{i}"))
            .hostnames(&h)
            .tenant_route(),
    );
    let request = Request::create(object, tenant_user(&format!("t{t}")));
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{i}"),
            "kind": {"group": "gatehouse.dev", "version": "v1alpha1", "kind": "TenantRoute"},
            "name": format!("n{i}"),
            "namespace": format!("t{t}"),
            "operation": "CREATE",
            "userInfo": {"username": request.user.username, "groups": request.user.groups},
            "object": request.object,
        }
    });
    (serde_json::to_vec(&body).expect("serializes"), allowed)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// What one watch event costs the snapshot: a full rebuild from every object (what each
/// Tenant or Namespace change still does) against applying a route change to a clone of
/// the published snapshot (what every route-like change does).
fn snapshot_update_cost(source: &SnapshotSource, world: &Objects, tenants: usize) {
    let mut rebuilds = Vec::new();
    for _ in 0..3 {
        let objects = world.clone();
        let start = Instant::now();
        std::hint::black_box(Snapshot::new(objects));
        rebuilds.push(start.elapsed());
    }
    rebuilds.sort();
    let current = source.load().expect("fixed source has a snapshot");
    let mut updates = Vec::new();
    for i in 0..2_000 {
        let t = (i * 7919) % tenants;
        let change = Change::Applied(Object::TenantRoute(
            route(&format!("t{t}"), &format!("u{i}"))
                .hostnames(&[&format!("u{i}.t{t}.example.com")])
                .tenant_route(),
        ));
        let start = Instant::now();
        let mut next = Snapshot::clone(&current);
        next.update(&change).expect("a route change applies");
        std::hint::black_box(&next);
        updates.push(start.elapsed());
    }
    updates.sort();
    println!(
        "snapshot_update full_rebuild_ms={:.1} incremental_p50_us={:.1} incremental_p99_us={:.1}",
        rebuilds[1].as_secs_f64() * 1e3,
        percentile(&updates, 0.5) * 1e3,
        percentile(&updates, 0.99) * 1e3,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let world = scale_world(args.tenants, args.routes_per_tenant);
    let started = Instant::now();
    let source = SnapshotSource::fixed(world.clone());
    eprintln!(
        "snapshot: {} tenants, {} routes, built in {:?}",
        args.tenants,
        args.tenants * args.routes_per_tenant,
        started.elapsed()
    );
    snapshot_update_cost(&source, &world, args.tenants);
    let webhook = Arc::new(Webhook::new(
        Policy::new(Admins::default()),
        Arc::new(source),
    ));
    let server = server::start(
        webhook,
        ServerConfig {
            addr: "127.0.0.1:0".parse()?,
            cert: CertFiles {
                cert: args.cert,
                key: args.key,
            },
            metrics_addr: None,
            cert_poll: Duration::from_secs(1),
        },
    )
    .await?;
    let ca = std::fs::read(&args.ca).with_context(|| format!("{}", args.ca.display()))?;
    let client = HttpsClient::new(&ca, server.addr, "localhost")?;
    let mut workers = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let client = client.clone();
        let mine: Vec<_> = (c..args.requests)
            .step_by(args.clients)
            .map(|i| request(i, args.tenants))
            .collect();
        workers.spawn(async move {
            let mut connection = client.connect().await?;
            let mut samples = Vec::with_capacity(mine.len());
            for (body, allowed) in mine {
                let start = Instant::now();
                let (status, answer) = connection.post("/validate", body).await?;
                samples.push(start.elapsed());
                let answer: serde_json::Value = serde_json::from_slice(&answer)?;
                ensure!(
                    status == 200 && answer["response"]["allowed"] == allowed,
                    "unexpected answer {answer}"
                );
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = workers.join_next().await {
        samples.extend(done??);
    }
    samples.sort();
    println!(
        "webhook_decision N={} clients={} p50_ms={:.3} p99_ms={:.3}",
        samples.len(),
        args.clients,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99)
    );
    let (_, metrics) = client.connect().await?.get("/metrics").await?;
    let metrics = String::from_utf8_lossy(&metrics);
    let p99 = quantile_from_text(
        &metrics,
        "gatehouse_webhook_decision_duration_seconds",
        0.99,
    )
    .context("no decisions in /metrics")?;
    println!(
        "webhook_server_decision p99_ms={:.3} (histogram estimate)",
        p99 * 1e3
    );
    Ok(())
}
