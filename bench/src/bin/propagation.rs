//! Config propagation benchmark.
//!
//! For each route-table size N: start a fresh `gatehouse proxy`, load one listener, one backend
//! and N HTTPRoutes through the admin delta API, then add `samples` routes one at a time and
//! measure how long each takes from the start of its `POST /v1/delta` until the listener serves
//! it (first `200` for its hostname). Results go to stdout, progress to stderr.

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use gatehouse_core::model::{
    Backend, BackendKey, BackendTarget, Delta, HttpRoute, HttpRule, Listener, ListenerKey,
    ListenerProtocol, Resource, RouteKey, WeightedBackend,
};
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const LISTENER_KEY: &str = "bench/gw/http";
const BACKEND_KEY: &str = "bench/echo:80";
const BATCH: usize = 5_000;
const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const FULL_SIZE: usize = 1_000_000;
const POLL_LIMIT: Duration = Duration::from_secs(10);
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
const ADMIN_LIMIT: Duration = Duration::from_secs(300);

#[derive(Parser, Debug)]
#[command(about = "Measures route propagation latency and memory of `gatehouse proxy`")]
struct Args {
    /// Path to the `gatehouse` binary.
    #[arg(long)]
    gatehouse: PathBuf,
    /// Also run N=1,000,000 (ignored when --sizes is given).
    #[arg(long)]
    full: bool,
    /// Comma-separated route-table sizes, overriding the defaults.
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Routes added one at a time (and timed) per size.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("propagation: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("propagation: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn main_async(args: Args) -> Result<()> {
    let sizes = match &args.sizes {
        Some(s) => s.clone(),
        None if args.full => DEFAULT_SIZES.iter().copied().chain([FULL_SIZE]).collect(),
        None => DEFAULT_SIZES.to_vec(),
    };
    if sizes.is_empty() || sizes.contains(&0) {
        bail!("--sizes must list positive numbers");
    }
    // Dropping `run` (on a signal) drops its `ProxyGuard`, which kills the proxy.
    tokio::select! {
        r = run(&args, &sizes) => r,
        s = shutdown_signal() => Err(anyhow!("interrupted by {s}")),
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

async fn run(args: &Args, sizes: &[usize]) -> Result<()> {
    let backend = start_backend().await?;
    eprintln!("# backend on {backend}");
    let mut p99_at_100k = None;
    for &n in sizes {
        let p99 = bench_size(args, n, backend)
            .await
            .with_context(|| format!("N={n}"))?;
        if n == 100_000 {
            p99_at_100k = Some(p99);
        }
    }
    match p99_at_100k {
        Some(p) => println!("propagation_p99_ms_at_100k {p:.2}"),
        None => println!("propagation_p99_ms_at_100k n/a"),
    }
    Ok(())
}

/// Runs one size against a fresh proxy and returns the p99 in ms.
async fn bench_size(args: &Args, n: usize, backend: SocketAddr) -> Result<f64> {
    let admin = free_addr()?;
    let listener = free_addr()?;
    let mut proxy = ProxyGuard::start(&args.gatehouse, admin, n)?;
    eprintln!(
        "# N={n}: proxy pid {} admin {admin} listener {listener} log {}",
        proxy.pid(),
        proxy.log.display()
    );
    let result = match measure(args, n, backend, admin, listener, &mut proxy).await {
        Ok(r) => r,
        Err(e) => {
            let state = match proxy.child.try_wait() {
                Ok(Some(status)) => format!("proxy exited ({status})"),
                _ => "proxy still running".to_string(),
            };
            let tail = proxy.log_tail();
            return Err(e.context(format!(
                "{state}; log {}, tail:\n{tail}",
                proxy.log.display()
            )));
        }
    };
    let log = proxy.log.clone();
    drop(proxy);
    let _ = std::fs::remove_file(log);

    let Measured {
        mut lat_us,
        load,
        rss_before,
        rss_after,
    } = result;
    lat_us.sort_unstable();
    let p50 = percentile_ms(&lat_us, 50.0);
    let p99 = percentile_ms(&lat_us, 99.0);
    let rss_mib = rss_after as f64 / (1024.0 * 1024.0);
    let growth = (rss_after as i64 - rss_before as i64) / n as i64;
    println!("propagation N={n} p50_ms={p50:.2} p99_ms={p99:.2} rss_mib={rss_mib:.1}");
    println!(
        "# N={n} load_s={:.3} rss_growth_bytes_per_route={growth}",
        load.as_secs_f64()
    );
    Ok(p99)
}

struct Measured {
    lat_us: Vec<u64>,
    load: Duration,
    rss_before: u64,
    rss_after: u64,
}

async fn measure(
    args: &Args,
    n: usize,
    backend: SocketAddr,
    admin: SocketAddr,
    listener: SocketAddr,
    proxy: &mut ProxyGuard,
) -> Result<Measured> {
    wait_healthy(admin, proxy).await?;
    let mut api = Client::new(admin);

    let created_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    push(
        &mut api,
        &Delta {
            upserts: vec![
                Resource::Listener(Listener {
                    key: ListenerKey::from(LISTENER_KEY),
                    version: 1,
                    address: listener.ip(),
                    port: listener.port(),
                    protocol: ListenerProtocol::Http,
                    hostname: None,
                    tls: None,
                }),
                Resource::Backend(Backend {
                    key: BackendKey::from(BACKEND_KEY),
                    version: 1,
                    app_protocol: Default::default(),
                    endpoints: vec![backend],
                }),
            ],
            removals: vec![],
        },
    )
    .await
    .context("listener+backend delta")?;
    let mut probe = Client::new(listener);
    wait_listening(&mut probe).await?;
    let rss_before = proxy.rss_bytes()?;

    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let delta = Delta {
            upserts: (i..end)
                .map(|i| route(&format!("r{i}"), created_ms + i as i64))
                .collect(),
            removals: vec![],
        };
        push(&mut api, &delta)
            .await
            .with_context(|| format!("route batch {i}..{end}"))?;
        i = end;
    }
    let load = start.elapsed();
    eprintln!("# N={n}: loaded in {:.3} s", load.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = proxy.rss_bytes()?;

    // Sanity check before timing: loaded routes are served.
    for host in [
        "r0.bench.example".to_string(),
        format!("r{}.bench.example", n - 1),
    ] {
        poll_until_ok(&mut probe, &host)
            .await
            .with_context(|| format!("loaded route {host} not served"))?;
    }

    let mut lat_us = Vec::with_capacity(args.samples as usize);
    for j in 0..args.samples {
        let name = format!("new{j}");
        let host = format!("{name}.bench.example");
        let delta = Delta {
            upserts: vec![route(&name, created_ms + n as i64 + j as i64)],
            removals: vec![],
        };
        let body = serde_json::to_vec(&delta)?;
        let t0 = Instant::now();
        push_raw(&mut api, &body)
            .await
            .with_context(|| format!("route {name}"))?;
        let done = poll_until_ok(&mut probe, &host)
            .await
            .with_context(|| format!("route {name} never served"))?;
        lat_us.push((done - t0).as_micros() as u64);
    }
    Ok(Measured {
        lat_us,
        load,
        rss_before,
        rss_after,
    })
}

fn route(name: &str, created_ms: i64) -> Resource {
    Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
        key: RouteKey::new("bench", name),
        version: 1,
        created_ms,
        hostnames: vec![format!("{name}.bench.example")],
        parents: vec![ListenerKey::from(LISTENER_KEY)],
        rules: vec![HttpRule {
            backends: vec![WeightedBackend {
                target: BackendTarget::Service(BackendKey::from(BACKEND_KEY)),
                weight: 1,
                filters: vec![],
            }],
            ..Default::default()
        }],
    }))
}

/// Nearest-rank percentile of sorted microsecond samples, in ms.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    let n = sorted_us.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted_us[rank.clamp(1, n) - 1] as f64 / 1000.0
}

async fn push(api: &mut Client, delta: &Delta) -> Result<u64> {
    push_raw(api, &serde_json::to_vec(delta)?).await
}

/// POSTs a serialized delta; anything but 200 is an error carrying the proxy's message.
async fn push_raw(api: &mut Client, body: &[u8]) -> Result<u64> {
    let resp = tokio::time::timeout(
        ADMIN_LIMIT,
        api.send("POST", "/v1/delta", "admin", Some(body)),
    )
    .await
    .map_err(|_| anyhow!("POST /v1/delta timed out after {ADMIN_LIMIT:?}"))?
    .context("POST /v1/delta")?;
    let json: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
    if resp.status != 200 {
        let msg = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).into_owned());
        bail!("POST /v1/delta answered {}: {msg}", resp.status);
    }
    json.as_ref()
        .and_then(|j| j.get("version"))
        .and_then(|v| v.as_u64())
        .ok_or_else(|| {
            anyhow!(
                "POST /v1/delta answered 200 without a version: {}",
                String::from_utf8_lossy(&resp.body)
            )
        })
}

async fn wait_healthy(admin: SocketAddr, proxy: &mut ProxyGuard) -> Result<()> {
    let deadline = Instant::now() + STARTUP_LIMIT;
    loop {
        proxy.check_running()?;
        let mut c = Client::new(admin);
        let last = match tokio::time::timeout(
            Duration::from_secs(1),
            c.send("GET", "/healthz", "admin", None),
        )
        .await
        {
            Ok(Ok(r)) if r.status == 200 => return Ok(()),
            Ok(Ok(r)) => format!("status {}", r.status),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timeout".into(),
        };
        if Instant::now() >= deadline {
            bail!("admin {admin} not healthy after {STARTUP_LIMIT:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the listener answers HTTP at all (it has no routes yet).
async fn wait_listening(probe: &mut Client) -> Result<()> {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let last = match tokio::time::timeout_at(
            deadline.into(),
            probe.send("GET", "/", "probe.bench.example", None),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timeout".into(),
        };
        if Instant::now() >= deadline {
            bail!(
                "listener {} not answering after {POLL_LIMIT:?} (last: {last})",
                probe.addr
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Polls `GET /` with `Host: host` as fast as possible until it answers 200; returns when.
async fn poll_until_ok(probe: &mut Client, host: &str) -> Result<Instant> {
    let deadline = Instant::now() + POLL_LIMIT;
    let mut last = String::from("no answer");
    loop {
        match tokio::time::timeout_at(deadline.into(), probe.send("GET", "/", host, None)).await {
            Ok(Ok(r)) if r.status == 200 => return Ok(Instant::now()),
            Ok(Ok(r)) => {
                last = format!(
                    "status {} body {:?}",
                    r.status,
                    String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
                )
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            bail!("no 200 after {POLL_LIMIT:?} (last: {last})");
        }
        tokio::task::yield_now().await;
    }
}

fn free_addr() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding port 0")?;
    Ok(l.local_addr()?)
}

/// The proxy process; killed and reaped when dropped.
struct ProxyGuard {
    child: Child,
    log: PathBuf,
}

impl ProxyGuard {
    fn start(bin: &Path, admin: SocketAddr, n: usize) -> Result<Self> {
        let log = std::env::temp_dir().join(format!(
            "gatehouse-bench-proxy-{}-{n}.log",
            std::process::id()
        ));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("proxy")
            .arg("--admin")
            .arg(admin.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the proxy has exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("proxy exited early: {status}"),
            None => Ok(()),
        }
    }

    fn rss_bytes(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no VmRSS in {path}"))?;
        Ok(kib * 1024)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 over tokio.

struct Head {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

/// Reads a request or response head; `None` on a clean EOF before any byte.
async fn read_head<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    response: bool,
) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let first = line.trim_end().to_string();
    let mut parts = first.split_whitespace();
    let (version, status) = if response {
        let v = parts.next().unwrap_or_default().to_string();
        let s = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {first:?}")))?;
        (v, s)
    } else {
        (parts.nth(2).unwrap_or_default().to_string(), 0)
    };
    let mut head = Head {
        status,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some(head));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(bad(format!("bad header {l:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                head.close = true;
            } else if v.contains("keep-alive") {
                head.close = false;
            }
        }
    }
}

async fn read_chunked<R: AsyncBufReadExt + Unpin>(r: &mut R, body: &mut Vec<u8>) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = line.trim_end().split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers up to the blank line.
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).await?;
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            io: BufReader::new(s),
        })
    }

    /// Sends one request; returns the response and whether the connection must be closed.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        host: &str,
        body: Option<&[u8]>,
    ) -> io::Result<(Response, bool)> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        let s = self.io.get_mut();
        match body {
            Some(b) if b.len() <= 16 * 1024 => {
                let mut buf = req.into_bytes();
                buf.extend_from_slice(b);
                s.write_all(&buf).await?;
            }
            Some(b) => {
                s.write_all(req.as_bytes()).await?;
                s.write_all(b).await?;
            }
            None => s.write_all(req.as_bytes()).await?,
        }
        loop {
            let head = read_head(&mut self.io, true)
                .await?
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            if (100..200).contains(&head.status) {
                continue;
            }
            let mut body = Vec::new();
            let mut close = head.close;
            if method == "HEAD" || head.status == 204 || head.status == 304 {
            } else if head.chunked {
                read_chunked(&mut self.io, &mut body).await?;
            } else if let Some(len) = head.content_length {
                body.resize(len as usize, 0);
                self.io.read_exact(&mut body).await?;
            } else {
                self.io.read_to_end(&mut body).await?;
                close = true;
            }
            return Ok((
                Response {
                    status: head.status,
                    body,
                },
                close,
            ));
        }
    }
}

/// One keep-alive connection, reopened when the server closes it.
struct Client {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        host: &str,
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        // A reused connection may have been closed by the server meanwhile: retry once fresh.
        if let Some(mut c) = self.conn.take()
            && let Ok((resp, close)) = c.request(method, path, host, body).await
        {
            if !close {
                self.conn = Some(c);
            }
            return Ok(resp);
        }
        let mut c = Conn::connect(self.addr).await?;
        let (resp, close) = c.request(method, path, host, body).await?;
        if !close {
            self.conn = Some(c);
        }
        Ok(resp)
    }
}

// ---------------------------------------------------------------------------------------------
// Backend: answers every request `200 OK` with a short body, keep-alive.

async fn start_backend() -> Result<SocketAddr> {
    let l = TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let _ = serve_backend_conn(s).await;
            });
        }
    });
    Ok(addr)
}

async fn serve_backend_conn(s: TcpStream) -> io::Result<()> {
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    let mut io = BufReader::new(s);
    while let Some(head) = read_head(&mut io, false).await? {
        if head.chunked {
            read_chunked(&mut io, &mut Vec::new()).await?;
        } else if let Some(len) = head.content_length {
            tokio::io::copy(&mut (&mut io).take(len), &mut tokio::io::sink()).await?;
        }
        io.get_mut().write_all(RESPONSE).await?;
        if head.close {
            break;
        }
    }
    Ok(())
}
