//! Proxy sync against real in-process proxies: restarts are noticed and resynced, and a
//! dead proxy does not hold up a live one. No cluster needed.

use gatehouse_controller::proxies::{self, Config};
use gatehouse_core::model::{AppProtocol, Backend, BackendKey, Resource};
use gatehouse_proxy::Proxy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config(backends: &[&str]) -> Arc<Config> {
    Arc::new(
        backends
            .iter()
            .map(|name| {
                let r = Resource::Backend(Backend {
                    key: BackendKey::new("ns", name, 80),
                    version: 0,
                    app_protocol: AppProtocol::Http1,
                    endpoints: vec!["10.0.0.1:80".parse().unwrap()],
                });
                (r.key(), r)
            })
            .collect(),
    )
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A proxy whose admin API listens on `addr`, retrying while the old socket goes away.
async fn proxy_at(addr: SocketAddr) -> Proxy {
    let proxy = Proxy::start(1);
    for _ in 0..200 {
        if proxy.serve_admin(addr).await.is_ok() {
            return proxy;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cannot bind {addr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_proxy_is_resynced_and_dead_one_is_isolated() {
    let addr = free_addr();
    let first = proxy_at(addr).await;
    let (desired, desired_rx) = watch::channel(Some(config(&["a", "b"])));
    let mut tasks = JoinSet::new();
    let notify = Arc::new(Notify::new());
    let dead = proxies::spawn(&mut tasks, free_addr(), desired_rx.clone(), notify.clone());
    let live = proxies::spawn(&mut tasks, addr, desired_rx, notify);

    until("first proxy holds a and b", || {
        first.store.snapshot().stats().backends == 2
    })
    .await;
    until("live proxy acknowledged", || live.acked.borrow().len() == 2).await;
    assert!(dead.acked.borrow().is_empty());

    desired.send_replace(Some(config(&["a"])));
    until("delta removed b", || {
        first.store.snapshot().stats().backends == 1
    })
    .await;

    // A restart comes back empty under a new instance id: everything is sent again.
    drop(first);
    let second = proxy_at(addr).await;
    until("second proxy resynced", || {
        second.store.snapshot().stats().backends == 1
    })
    .await;
    desired.send_replace(Some(config(&["a", "c"])));
    until("deltas continue on the new instance", || {
        second.store.snapshot().stats().backends == 2
    })
    .await;
    assert!(dead.acked.borrow().is_empty());
}
