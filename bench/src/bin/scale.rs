//! Control-plane scale benchmark against a real API server (driven by `bench/scale`).
//!
//! Creates 1,000 tenants (a namespace, a Tenant with a wildcard domain and a grant on the
//! shared Gateway, a Service with one endpoint) and then N TenantRoutes spread over them,
//! and measures how long until every route reports `Programmed=True` (which the controller
//! only says once the proxy acknowledged it), the RSS of controller and proxy at that point,
//! and then apply -> first 200 through the proxy for new routes added one at a time.

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use gatehouse_crds::TenantRoute;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Route counts to reach, in order (each run adds to the previous).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// The shared Gateway's listener, as the proxy serves it.
    #[arg(long)]
    gateway: SocketAddr,
    /// Where the one echo backend listens (an address the API server accepts).
    #[arg(long)]
    backend: SocketAddr,
    #[arg(long)]
    controller_pid: u32,
    #[arg(long)]
    proxy_pid: u32,
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Concurrent writes to the API server while loading.
    #[arg(long, default_value_t = 32)]
    writers: usize,
}

const INFRA: &str = "gh-scale-infra";
const DOMAIN: &str = "scale.example";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = kube::config::KubeConfigOptions::default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    // Loading is what is measured on the controller side, not client-side throttling.
    config.read_timeout = Some(Duration::from_secs(60));
    let client = Client::try_from(config)?;

    let started = Instant::now();
    setup(&client, &args).await?;
    eprintln!(
        "scale: {} tenants ready in {:.1}s",
        args.tenants,
        started.elapsed().as_secs_f64()
    );

    let mut have = 0;
    for &n in &args.sizes {
        let t0 = Instant::now();
        let items: Vec<usize> = (have..n).collect();
        write_all(&client, &args, items, route).await?;
        let written = t0.elapsed();
        wait_all_programmed(&client, n).await?;
        let attached = t0.elapsed();
        println!(
            "attach N={n} all_attached_s={:.1} writes_s={:.1} controller_rss_mib={:.1} proxy_rss_mib={:.1}",
            attached.as_secs_f64(),
            written.as_secs_f64(),
            rss_mib(args.controller_pid)?,
            rss_mib(args.proxy_pid)?,
        );
        have = n;
        probe(&client, &args, n).await?;
    }
    Ok(())
}

fn tenant_ns(t: usize) -> String {
    format!("gh-scale-t{t}")
}

fn route(i: usize, tenants: usize) -> (String, Value) {
    let t = i % tenants;
    let ns = tenant_ns(t);
    let name = format!("r{i}");
    let host = format!("r{i}.t{t}.{DOMAIN}");
    let body = json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hostnames": [host], "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
    });
    (format!("{ns}/{name}"), body)
}

async fn apply(client: &Client, object: &Value) -> anyhow::Result<()> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let ns = object["metadata"]["namespace"].as_str();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let plural = match kind {
        "Namespace" => "namespaces",
        "GatewayClass" => "gatewayclasses",
        "Gateway" => "gateways",
        "Tenant" => "tenants",
        "TenantRoute" => "tenantroutes",
        "Service" => "services",
        "EndpointSlice" => "endpointslices",
        other => bail!("the benchmark does not write {other}"),
    };
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<kube::api::DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply("gatehouse-bench").force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

async fn write_all(
    client: &Client,
    args: &Args,
    items: Vec<usize>,
    make: fn(usize, usize) -> (String, Value),
) -> anyhow::Result<()> {
    let tenants = args.tenants;
    let results: Vec<anyhow::Result<()>> = stream::iter(items)
        .map(|i| async move {
            let (_, body) = make(i, tenants);
            apply(client, &body).await
        })
        .buffer_unordered(args.writers)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn setup(client: &Client, args: &Args) -> anyhow::Result<()> {
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INFRA}}),
    )
    .await?;
    apply(
        client,
        &json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "gatehouse-scale"},
            "spec": {"controllerName": "gatehouse.dev/gateway-controller"},
        }),
    )
    .await?;
    apply(
        client,
        &json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "shared", "namespace": INFRA},
            "spec": {
                "gatewayClassName": "gatehouse-scale",
                "addresses": [{"type": "IPAddress", "value": args.gateway.ip().to_string()}],
                "listeners": [{
                    "name": "http", "protocol": "HTTP", "port": args.gateway.port(),
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }],
            },
        }),
    )
    .await?;
    let backend = args.backend;
    let objects: Vec<Value> = (0..args.tenants)
        .flat_map(|t| {
            let ns = tenant_ns(t);
            [
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                json!({
                    "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Tenant",
                    "metadata": {"name": format!("scale-t{t}")},
                    "spec": {
                        "namespaces": {"names": [ns]},
                        "domains": [format!("*.t{t}.{DOMAIN}")],
                        "listeners": [{"gatewayNamespace": INFRA, "gatewayName": "shared", "sectionNames": ["http"]}],
                    },
                }),
                json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "echo", "namespace": ns},
                    "spec": {"ports": [{"name": "http", "port": 80}]},
                }),
                json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "echo-1", "namespace": ns,
                                 "labels": {"kubernetes.io/service-name": "echo"}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": backend.port()}],
                    "endpoints": [{"addresses": [backend.ip().to_string()], "conditions": {"ready": true}}],
                }),
            ]
        })
        .collect();
    // Namespaces first: everything else lives in them.
    let (namespaces, rest): (Vec<Value>, Vec<Value>) =
        objects.into_iter().partition(|o| o["kind"] == "Namespace");
    for batch in [namespaces, rest] {
        let results: Vec<anyhow::Result<()>> = stream::iter(batch.iter())
            .map(|o| apply(client, o))
            .buffer_unordered(args.writers)
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    }
    Ok(())
}

/// Until `n` TenantRoutes report Programmed=True.
async fn wait_all_programmed(client: &Client, n: usize) -> anyhow::Result<()> {
    let api: Api<TenantRoute> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let list = api.list(&ListParams::default()).await?;
        let programmed = list
            .items
            .iter()
            .filter(|r| {
                r.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Programmed" && c.status == "True")
                })
            })
            .count();
        if programmed >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {programmed} of {n} TenantRoutes Programmed after 30 min");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// apply -> first 200 through the proxy, one new route at a time.
async fn probe(client: &Client, args: &Args, n: usize) -> anyhow::Result<()> {
    let mut samples = Vec::with_capacity(args.samples);
    // How much of each sample is the API server's write alone (the apply call returning).
    let mut writes = Vec::with_capacity(args.samples);
    let http = reqwest_like::Client::new(args.gateway);
    for k in 0..args.samples {
        let t = k % args.tenants;
        let host = format!("probe{n}-{k}.t{t}.{DOMAIN}");
        let body = json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
            "metadata": {"name": format!("probe{n}-{k}"), "namespace": tenant_ns(t)},
            "spec": {"hostnames": [host], "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
        });
        let t0 = Instant::now();
        apply(client, &body).await?;
        writes.push(t0.elapsed());
        loop {
            if http.status(&host).await == Some(200) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("{host}: no 200 within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(t0.elapsed());
    }
    samples.sort();
    writes.sort();
    let pct = |sorted: &[Duration], p: f64| {
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1000.0
    };
    println!(
        "probe N={n} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} apply_p50_ms={:.1}",
        pct(&samples, 0.50),
        pct(&samples, 0.99),
        pct(&samples, 1.0),
        pct(&writes, 0.50)
    );
    Ok(())
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kib / 1024.0)
}

/// A minimal keep-alive HTTP/1.1 client for probing one address.
mod reqwest_like {
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub struct Client {
        addr: SocketAddr,
    }

    impl Client {
        pub fn new(addr: SocketAddr) -> Self {
            Client { addr }
        }

        /// The status of `GET /` for `host`, or None when the request failed.
        pub async fn status(&self, host: &str) -> Option<u16> {
            let mut stream = TcpStream::connect(self.addr).await.ok()?;
            let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.ok()?;
            std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
        }
    }
}
