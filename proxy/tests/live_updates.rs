//! 1,000 config updates while 50 WebSockets and a steady request loop stay up: no
//! connection is cut and no request fails.

mod common;

use common::{Env, client, free_port};
use futures_util::{SinkExt, StreamExt};
use gatehouse_core::model::{
    AppProtocol, Backend, BackendKey, BackendTarget, Delta, HeaderModifier, HttpFilter, HttpRoute,
    HttpRule, Listener, ListenerKey, ListenerProtocol, Resource, ResourceKey, RouteKey,
    WeightedBackend,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const WEBSOCKETS: usize = 50;
const UPDATES: usize = 1_000;

async fn websocket_echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn listener(name: &str, port: u16) -> Resource {
    Resource::Listener(Listener {
        key: ListenerKey::new("default", "gw", name),
        version: 1,
        address: "127.0.0.1".parse().unwrap(),
        port,
        protocol: ListenerProtocol::Http,
        hostname: None,
        tls: None,
    })
}

fn backend(name: &str, addr: SocketAddr, version: u64, app: AppProtocol) -> Resource {
    Resource::Backend(Backend {
        key: BackendKey::new("default", name, 80),
        version,
        app_protocol: app,
        endpoints: vec![addr],
    })
}

fn route(name: &str, host: &str, backend: &str, version: u64) -> Resource {
    Resource::HttpRoute(Arc::new(HttpRoute {
        key: RouteKey::new("default", name),
        version,
        created_ms: 0,
        hostnames: vec![host.to_string()],
        parents: vec![ListenerKey::new("default", "gw", "http")],
        rules: vec![HttpRule {
            filters: vec![HttpFilter::RequestHeaderModifier(HeaderModifier {
                set: vec![("x-config-version".into(), version.to_string())],
                ..Default::default()
            })],
            backends: vec![WeightedBackend {
                target: BackendTarget::Service(BackendKey::new("default", backend, 80)),
                weight: 1,
                filters: vec![],
            }],
            ..Default::default()
        }],
    }))
}

fn apply(env: &Env, upserts: Vec<Resource>, removals: Vec<ResourceKey>) {
    env.proxy
        .store
        .apply(&Delta { upserts, removals })
        .expect("delta applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_never_cut_websockets_or_requests() {
    let mut env = Env::start().await;
    let echo = env.add_backend("v1", 200).await;
    let ws_addr = websocket_echo_server().await;
    apply(
        &env,
        vec![
            listener("http", env.port),
            backend("v1", echo, 1, AppProtocol::Http1),
            backend("ws", ws_addr, 1, AppProtocol::WebSocket),
            route("ws", "ws.test", "ws", 1),
            route("loop", "loop.test", "v1", 1),
        ],
        vec![],
    );
    env.wait_listening().await;

    let mut sockets = Vec::new();
    for _ in 0..WEBSOCKETS {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", env.port))
            .await
            .unwrap();
        let url = format!("ws://ws.test:{}/chat", env.port);
        let (ws, resp) = tokio_tungstenite::client_async(url, tcp)
            .await
            .expect("upgrade");
        assert_eq!(resp.status(), 101);
        sockets.push(ws);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ws_errors = Arc::new(AtomicU64::new(0));
    let ws_messages = Arc::new(AtomicU64::new(0));
    let mut ws_tasks = Vec::new();
    for (i, mut ws) in sockets.into_iter().enumerate() {
        let (stop, errors, messages) = (stop.clone(), ws_errors.clone(), ws_messages.clone());
        ws_tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("socket {i} message {n}");
                let outcome = match ws.send(Message::text(text.clone())).await {
                    Ok(()) => tokio::time::timeout(Duration::from_secs(5), ws.next())
                        .await
                        .map_err(|_| "timed out".to_string())
                        .and_then(|m| match m {
                            Some(Ok(Message::Text(t))) if t.as_str() == text => Ok(()),
                            other => Err(format!("unexpected {other:?}")),
                        }),
                    Err(e) => Err(format!("send failed: {e}")),
                };
                match outcome {
                    Ok(()) => {
                        messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("websocket {i} failed after {n} messages: {e}");
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = ws.close(None).await;
        }));
    }

    let req_errors = Arc::new(AtomicU64::new(0));
    let req_ok = Arc::new(AtomicU64::new(0));
    let loop_task = {
        let (stop, errors, ok) = (stop.clone(), req_errors.clone(), req_ok.clone());
        let url = env.url("/steady");
        tokio::spawn(async move {
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                match http.get(&url).header("host", "loop.test").send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("request failed: {other:?}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // The updates: new routes, changed routes, removed routes, endpoint churn and a second
    // listener coming and going.
    let extra_port = free_port();
    for i in 0..UPDATES {
        let v = i as u64 + 2;
        let (upserts, removals) = match i % 5 {
            0 => (
                vec![route(&format!("r{i}"), &format!("r{i}.test"), "v1", v)],
                vec![],
            ),
            1 => (vec![route("loop", "loop.test", "v1", v)], vec![]),
            2 => (vec![backend("v1", echo, v, AppProtocol::Http1)], vec![]),
            3 if i >= 10 => (
                vec![route("ws", "ws.test", "ws", v)],
                vec![ResourceKey::HttpRoute(RouteKey::new(
                    "default",
                    &format!("r{}", i - 8),
                ))],
            ),
            _ if i % 100 == 4 => (vec![listener("extra", extra_port)], vec![]),
            _ if i % 100 == 54 => (
                vec![],
                vec![ResourceKey::Listener(ListenerKey::new(
                    "default", "gw", "extra",
                ))],
            ),
            _ => (vec![route("ws", "ws.test", "ws", v)], vec![]),
        };
        apply(&env, upserts, removals);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    loop_task.await.unwrap();
    for t in ws_tasks {
        t.await.unwrap();
    }

    let (ok, errors) = (
        req_ok.load(Ordering::Relaxed),
        req_errors.load(Ordering::Relaxed),
    );
    let (msgs, ws_errs) = (
        ws_messages.load(Ordering::Relaxed),
        ws_errors.load(Ordering::Relaxed),
    );
    println!("requests ok={ok} errors={errors}; websocket messages={msgs} errors={ws_errs}");
    assert_eq!(errors, 0, "no request failed during updates");
    assert_eq!(ws_errs, 0, "no WebSocket was cut during updates");
    assert!(ok > 100, "the request loop kept running ({ok})");
    assert!(
        msgs >= (WEBSOCKETS * 10) as u64,
        "WebSockets kept talking ({msgs})"
    );
    assert!(
        env.proxy.store.snapshot().version >= UPDATES as u64,
        "all updates applied"
    );
}
