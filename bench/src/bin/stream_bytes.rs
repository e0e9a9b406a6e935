//! Bytes on the config stream: a full snapshot, and one route change, addition and removal,
//! among N routes, as the controller encodes them (the gRPC frame adds 5 bytes per message).
//! The change figures must not grow with N.
//!
//!   cargo run -p gatehouse-bench --bin stream_bytes -- --sizes 1000,10000,100000

use clap::Parser;
use gatehouse_config_api::encode_delta;
use gatehouse_core::diff::diff;
use gatehouse_core::model::*;
use gatehouse_core::scope::Config;
use prost::Message;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Parser)]
struct Cli {
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
}

fn route(i: usize, path: &str) -> Resource {
    Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
        key: RouteKey::new(&format!("tenant-{}", i % 1000), &format!("route-{i}")),
        version: 1,
        created_ms: 1_700_000_000_000,
        hostnames: vec![format!("app-{i}.example.com")],
        parents: vec![ListenerKey::new("infra", "shared", "http")],
        rules: vec![HttpRule {
            matches: vec![HttpMatch {
                path: PathMatch::PathPrefix(path.to_string()),
                ..HttpMatch::default()
            }],
            backends: vec![WeightedBackend {
                target: BackendTarget::Service(BackendKey::new(
                    &format!("tenant-{}", i % 1000),
                    "web",
                    80,
                )),
                weight: 1,
                filters: vec![],
            }],
            ..HttpRule::default()
        }],
    }))
}

fn config(n: usize) -> Config {
    let mut c = Config::new();
    let listener = Resource::Listener(Listener {
        key: ListenerKey::new("infra", "shared", "http"),
        version: 1,
        address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250)),
        port: 18080,
        protocol: ListenerProtocol::Http,
        hostname: None,
        tls: None,
    });
    c.insert(listener.key(), listener);
    for t in 0..n.min(1000) {
        let b = Resource::Backend(Backend {
            key: BackendKey::new(&format!("tenant-{t}"), "web", 80),
            version: 1,
            app_protocol: AppProtocol::Http1,
            endpoints: vec!["198.18.0.1:18999".parse().unwrap()],
        });
        c.insert(b.key(), b);
    }
    for i in 0..n {
        let r = route(i, "/");
        c.insert(r.key(), r);
    }
    c
}

fn wire(old: &Config, new: &Config, snapshot: bool) -> usize {
    encode_delta(&diff(old, new), 2, "0123456789abcdef", snapshot).encoded_len()
}

fn main() {
    let cli = Cli::parse();
    for n in cli.sizes {
        let base = config(n);
        let mut changed = base.clone();
        let r = route(n / 2, "/v2");
        changed.insert(r.key(), r);
        let mut added = base.clone();
        let r = route(n, "/");
        added.insert(r.key(), r);
        let mut removed = base.clone();
        removed.remove(&route(n / 2, "/").key());
        println!(
            "stream_bytes routes={n} snapshot_bytes={} route_change_bytes={} route_add_bytes={} route_remove_bytes={}",
            wire(&Config::new(), &base, true),
            wire(&base, &changed, false),
            wire(&base, &added, false),
            wire(&base, &removed, false),
        );
    }
}
