//! gRPC end to end over real sockets: an h2 client over TLS, GRPCRoute matching on service,
//! method and headers with its filters, h2 to the backend, unary and bidirectional streaming
//! calls, grpc-status in trailers.

mod common;
#[path = "common/tls.rs"]
mod tls;

use bytes::{Buf, Bytes, BytesMut};
use common::free_port;
use gatehouse_core::model::{
    GrpcMatch, GrpcMethodMatch, GrpcMethodMatchType, GrpcRoute, GrpcRule, HeaderMatch,
    HeaderModifier, HttpFilter, ListenerKey, ListenerProtocol, Resource, RouteKey, StringMatch,
    TlsMode,
};
use gatehouse_proxy::Proxy;
use h2::RecvStream;
use http::{HeaderMap, Request, Response};
use std::net::SocketAddr;
use tls::{TestCa, backend, connect, tls_listener, upserts, wait_listening, weighted};
use tokio::net::TcpListener;

/// A gRPC message frame: uncompressed flag, big-endian length, payload.
fn frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

/// Complete messages taken off the front of `buf`.
fn messages(buf: &mut BytesMut) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        buf.advance(5);
        out.push(buf.split_to(len).to_vec());
    }
    out
}

/// A gRPC backend speaking h2 with prior knowledge: echoes each message as `{name}:{msg}` as
/// soon as it arrives, then ends with grpc-status 0, or 7 for the `Fail` method.
async fn grpc_backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(answer(name, req, respond));
                }
            });
        }
    });
    addr
}

async fn answer(
    name: &'static str,
    req: Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let path = req.uri().path().to_string();
    let added = req
        .headers()
        .get("x-added")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let resp = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("x-backend", name)
        .header("x-path", path.as_str())
        .header("x-saw-added", added)
        .body(())
        .unwrap();
    let Ok(mut send) = respond.send_response(resp, false) else {
        return;
    };
    let mut body = req.into_body();
    let mut buf = BytesMut::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        for msg in messages(&mut buf) {
            let reply = [name.as_bytes(), b":", &msg].concat();
            if send.send_data(frame(&reply), false).is_err() {
                return;
            }
        }
    }
    let mut trailers = HeaderMap::new();
    let status = if path.ends_with("/Fail") { "7" } else { "0" };
    trailers.insert("grpc-status", status.parse().unwrap());
    trailers.insert("grpc-message", "done".parse().unwrap());
    let _ = send.send_trailers(trailers);
}

fn method(kind: GrpcMethodMatchType, service: &str, method: &str) -> GrpcMatch {
    GrpcMatch {
        method: Some(GrpcMethodMatch {
            kind,
            service: Some(service.to_string()),
            method: Some(method.to_string()),
        }),
        headers: vec![],
    }
}

struct Setup {
    _proxy: Proxy,
    addr: SocketAddr,
    ca: TestCa,
}

async fn setup() -> Setup {
    common::init_logs();
    let ca = TestCa::new();
    let cert = ca.leaf(&["grpc.example.com"]);
    let proxy = Proxy::start(2);
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let blue_match = GrpcMatch {
        headers: vec![HeaderMatch {
            name: "x-tenant".into(),
            value: StringMatch::Exact("blue".into()),
        }],
        ..method(GrpcMethodMatchType::Exact, "test.Echo", "Unary")
    };
    let route = Resource::GrpcRoute(GrpcRoute {
        key: RouteKey::new("ns", "echo"),
        version: 1,
        created_ms: 0,
        hostnames: vec!["grpc.example.com".into()],
        parents: vec![ListenerKey::new("ns", "gw", "https")],
        rules: vec![
            GrpcRule {
                name: None,
                matches: vec![blue_match],
                filters: vec![],
                backends: vec![weighted("blue")],
            },
            GrpcRule {
                name: None,
                matches: vec![method(GrpcMethodMatchType::Exact, "test.Echo", "Unary")],
                filters: vec![
                    HttpFilter::RequestHeaderModifier(HeaderModifier {
                        add: vec![("x-added".into(), "by-gatehouse".into())],
                        ..Default::default()
                    }),
                    HttpFilter::ResponseHeaderModifier(HeaderModifier {
                        set: vec![("x-filtered".into(), "yes".into())],
                        ..Default::default()
                    }),
                ],
                backends: vec![weighted("main")],
            },
            GrpcRule {
                name: None,
                matches: vec![method(
                    GrpcMethodMatchType::RegularExpression,
                    r"test\.Ech[a-z]",
                    "Bidi|Fail",
                )],
                filters: vec![],
                backends: vec![weighted("main")],
            },
        ],
    });
    let delta = upserts(vec![
        cert.resource("ns/grpc"),
        // Plain Service ports (no appProtocol): a GRPCRoute still speaks h2 to them.
        backend("main", grpc_backend("main").await),
        backend("blue", grpc_backend("blue").await),
        tls_listener(
            "https",
            port,
            ListenerProtocol::Https,
            None,
            TlsMode::Terminate,
            &["ns/grpc"],
        ),
        route,
    ]);
    proxy.store.apply(&delta).expect("config applies");
    wait_listening(addr).await;
    Setup {
        _proxy: proxy,
        addr,
        ca,
    }
}

async fn client(s: &Setup) -> h2::client::SendRequest<Bytes> {
    let tls = connect(&s.ca.client(&[b"h2"]), s.addr, "grpc.example.com")
        .await
        .unwrap();
    let (client, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    client.ready().await.unwrap()
}

fn call(path: &str, extra: &[(&str, &str)]) -> Request<()> {
    let mut req = Request::post(format!("https://grpc.example.com{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.body(()).unwrap()
}

/// Reads the next complete message of a response body.
async fn next_message(body: &mut RecvStream, buf: &mut BytesMut) -> Option<String> {
    loop {
        if let Some(msg) = messages(buf).into_iter().next() {
            return Some(String::from_utf8(msg).unwrap());
        }
        let chunk = body.data().await?.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
}

fn header<'a>(resp: &'a Response<RecvStream>, name: &str) -> &'a str {
    resp.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_call_with_filters_and_trailers() {
    let s = setup().await;
    let mut grpc = client(&s).await;
    let (resp, mut send) = grpc
        .send_request(call("/test.Echo/Unary", &[]), false)
        .unwrap();
    send.send_data(frame(b"ping"), true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-backend"), "main");
    assert_eq!(header(&resp, "x-saw-added"), "by-gatehouse");
    assert_eq!(header(&resp, "x-filtered"), "yes");
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    assert_eq!(
        next_message(&mut body, &mut buf).await.as_deref(),
        Some("main:ping")
    );
    assert_eq!(next_message(&mut body, &mut buf).await, None);
    let trailers = body.trailers().await.unwrap().expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_match_picks_its_rule() {
    let s = setup().await;
    let mut grpc = client(&s).await;
    let (resp, mut send) = grpc
        .send_request(call("/test.Echo/Unary", &[("x-tenant", "blue")]), false)
        .unwrap();
    send.send_data(frame(b"hi"), true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(header(&resp, "x-backend"), "blue");
    // The other rule's filters do not apply here.
    assert_eq!(header(&resp, "x-filtered"), "");
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    assert_eq!(
        next_message(&mut body, &mut buf).await.as_deref(),
        Some("blue:hi")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidirectional_stream_interleaves_both_ways() {
    let s = setup().await;
    let mut grpc = client(&s).await;
    let (resp, mut send) = grpc
        .send_request(call("/test.Echo/Bidi", &[]), false)
        .unwrap();
    send.send_data(frame(b"one"), false).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(header(&resp, "x-path"), "/test.Echo/Bidi");
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    // Each reply arrives before the next request message is sent: both directions stream.
    assert_eq!(
        next_message(&mut body, &mut buf).await.as_deref(),
        Some("main:one")
    );
    send.send_data(frame(b"two"), false).unwrap();
    assert_eq!(
        next_message(&mut body, &mut buf).await.as_deref(),
        Some("main:two")
    );
    send.send_data(frame(b"three"), true).unwrap();
    assert_eq!(
        next_message(&mut body, &mut buf).await.as_deref(),
        Some("main:three")
    );
    assert_eq!(next_message(&mut body, &mut buf).await, None);
    let trailers = body.trailers().await.unwrap().expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_status_in_trailers_and_unrouted_methods() {
    let s = setup().await;
    let mut grpc = client(&s).await;
    let (resp, mut send) = grpc
        .send_request(call("/test.Echo/Fail", &[]), false)
        .unwrap();
    send.send_data(frame(b"x"), true).unwrap();
    let mut body = resp.await.unwrap().into_body();
    let mut buf = BytesMut::new();
    while next_message(&mut body, &mut buf).await.is_some() {}
    let trailers = body.trailers().await.unwrap().expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "7");
    // No rule matches this service: the proxy answers 404 itself.
    let (resp, mut send) = grpc
        .send_request(call("/test.Other/Unary", &[]), false)
        .unwrap();
    send.send_data(frame(b"x"), true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 404);
}
