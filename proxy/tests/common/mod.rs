//! Real-socket test harness: a proxy in this process, echo backends on loopback, config
//! from YAML through the same standalone watcher users run.
#![allow(dead_code)]

use gatehouse_proxy::echo::EchoBackend;
use gatehouse_proxy::listeners;
use gatehouse_proxy::standalone::{self, SyncReport, Watcher};
use gatehouse_proxy::{Binding, Options, Proxy};
use pingora_core::apps::HttpServerOptions;
use pingora_core::apps::http_app::{HttpServer, ServeHttp};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Backend {
    pub addr: SocketAddr,
    pub echo: Arc<EchoBackend>,
}

pub async fn start_echo(name: &str, status: u16) -> Backend {
    let echo = Arc::new(EchoBackend::with_status(name, status));
    let mut server = HttpServer::new_app(ArcEcho(echo.clone()));
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    server.server_options = Some(options);
    // Leaked on purpose: backends live as long as the test process.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    let addr = listeners::serve("127.0.0.1:0".parse().unwrap(), Arc::new(server), stop_rx)
        .await
        .expect("echo backend binds");
    Backend { addr, echo }
}

/// Lets a test keep a handle on the backend's counters while the server owns it.
pub struct ArcEcho(pub Arc<EchoBackend>);

#[async_trait::async_trait]
impl ServeHttp for ArcEcho {
    async fn response(
        &self,
        session: &mut pingora_core::protocols::http::ServerSession,
    ) -> http::Response<Vec<u8>> {
        self.0.response(session).await
    }
}

/// Logs to the test's output when RUST_LOG is set (pingora's `log` records included).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Service plus an EndpointSlice pointing at the given loopback ports.
pub fn service_yaml(
    namespace: &str,
    name: &str,
    ports: &[u16],
    app_protocol: Option<&str>,
) -> String {
    let app = app_protocol.map_or(String::new(), |a| format!("\n      appProtocol: {a}"));
    let endpoints: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                r#"---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: {namespace}
  labels:
    kubernetes.io/service-name: {name}
addressType: IPv4
ports:
  - name: http
    port: {port}
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
"#
            )
        })
        .collect();
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
spec:
  ports:
    - name: http
      port: 80{app}
{endpoints}"#
    )
}

pub struct Env {
    pub proxy: Proxy,
    pub port: u16,
    pub backends: BTreeMap<String, Backend>,
    pub dir: tempfile::TempDir,
    watcher: Watcher,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(Binding::AsConfigured, "127.0.0.1".parse().unwrap()).await
    }

    /// A proxy binding as `binding` says, its Gateways' listeners naming `address`.
    pub async fn start_with(binding: Binding, address: std::net::IpAddr) -> Env {
        init_logs();
        let proxy = Proxy::start_with(Options {
            binding,
            ..Options::new(2)
        });
        let dir = tempfile::tempdir().unwrap();
        let watcher = Watcher::new(
            dir.path().to_path_buf(),
            standalone::options(address),
            proxy.store.clone(),
        );
        Env {
            proxy,
            port: free_port(),
            backends: BTreeMap::new(),
            dir,
            watcher,
        }
    }

    pub async fn add_backend(&mut self, name: &str, status: u16) -> SocketAddr {
        let b = start_echo(name, status).await;
        let addr = b.addr;
        self.backends.insert(name.to_string(), b);
        addr
    }

    pub fn served(&self, name: &str) -> u64 {
        self.backends[name].echo.served()
    }

    pub fn write(&self, file: &str, yaml: &str) {
        std::fs::write(
            self.dir.path().join(file),
            yaml.replace("{{PORT}}", &self.port.to_string()),
        )
        .unwrap();
    }

    pub fn sync(&mut self) -> SyncReport {
        self.watcher.sync()
    }

    /// Waits until the gateway's port accepts connections.
    pub async fn wait_listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("port {} never started listening", self.port);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
