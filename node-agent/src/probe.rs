//! Readiness and liveness checks against the pod's own IP, the way the kubelet makes them:
//! httpGet succeeds on a 2xx/3xx answer, tcpSocket on an accepted connection.

use crate::plan::{ProbeAction, ProbePlan};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

pub async fn run(plan: &ProbePlan, ip: IpAddr) -> Outcome {
    match tokio::time::timeout(plan.timeout, check(&plan.action, ip)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failure(format!("timed out after {:?}", plan.timeout)),
    }
}

async fn check(action: &ProbeAction, ip: IpAddr) -> Outcome {
    match action {
        ProbeAction::Refused(why) => Outcome::Failure(why.clone()),
        ProbeAction::Tcp { port } => match TcpStream::connect(SocketAddr::new(ip, *port)).await {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure(format!("tcp {ip}:{port}: {e}")),
        },
        ProbeAction::Http { https: true, .. } => {
            Outcome::Failure("HTTPS probes are not supported by the node agent".into())
        }
        ProbeAction::Http {
            port,
            path,
            host_header,
            headers,
            ..
        } => {
            http_get(
                SocketAddr::new(ip, *port),
                path,
                host_header.as_deref(),
                headers,
            )
            .await
        }
    }
}

async fn http_get(
    addr: SocketAddr,
    path: &str,
    host: Option<&str>,
    headers: &[(String, String)],
) -> Outcome {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Outcome::Failure(format!("GET http://{addr}{path}: {what}: {e}"))
    };
    // Header text comes from the pod spec; a CR or LF could smuggle a second request.
    let unsafe_text = |s: &str| s.contains(['\r', '\n']);
    if unsafe_text(path)
        || host.is_some_and(unsafe_text)
        || headers
            .iter()
            .any(|(k, v)| unsafe_text(k) || unsafe_text(v))
    {
        return Outcome::Failure("probe path or header contains a line break".into());
    }
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return fail("connect", &e),
    };
    let host = host.map_or_else(|| addr.to_string(), str::to_string);
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/gatehouse\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()).await {
        return fail("write", &e);
    }
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return fail("read", &e),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let code = line
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..400).contains(&c) => Outcome::Success,
        Some(c) => Outcome::Failure(format!("GET http://{addr}{path}: status {c}")),
        None => Outcome::Failure(format!("GET http://{addr}{path}: no HTTP status line")),
    }
}

/// Success/failure counting with thresholds: the probe's verdict changes only after
/// `success_threshold` successes or `failure_threshold` failures in a row.
#[derive(Debug)]
pub struct Verdict {
    passing: bool,
    streak: u32,
}

impl Verdict {
    pub fn new(passing: bool) -> Self {
        Self { passing, streak: 0 }
    }

    pub fn passing(&self) -> bool {
        self.passing
    }

    /// Records one result; returns the (possibly changed) verdict.
    pub fn record(&mut self, plan: &ProbePlan, ok: bool) -> bool {
        if ok == self.passing {
            self.streak = 0;
            return self.passing;
        }
        self.streak += 1;
        let needed = if ok {
            plan.success_threshold
        } else {
            plan.failure_threshold
        };
        if self.streak >= needed {
            self.passing = ok;
            self.streak = 0;
        }
        self.passing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpListener;

    fn plan(action: ProbeAction) -> ProbePlan {
        ProbePlan {
            action,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    async fn server(status: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(
                    String::from_utf8_lossy(&buf[..n]).starts_with("GET /healthz HTTP/1.1\r\n")
                );
                s.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        port
    }

    fn http(port: u16) -> ProbeAction {
        ProbeAction::Http {
            port,
            path: "/healthz".into(),
            https: false,
            host_header: None,
            headers: vec![],
        }
    }

    #[tokio::test]
    async fn http_probe_passes_on_2xx_and_fails_on_5xx_over_real_sockets() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            run(&plan(http(server("200 OK").await)), ip).await,
            Outcome::Success
        );
        let bad = run(&plan(http(server("503 Service Unavailable").await)), ip).await;
        assert!(matches!(bad, Outcome::Failure(m) if m.contains("status 503")));
    }

    #[tokio::test]
    async fn tcp_probe_fails_on_a_closed_port_and_refused_probe_says_why() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let port = {
            TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        assert!(matches!(
            run(&plan(ProbeAction::Tcp { port }), ip).await,
            Outcome::Failure(_)
        ));
        let r = run(
            &plan(ProbeAction::Refused("exec probes are not supported".into())),
            ip,
        )
        .await;
        assert_eq!(r, Outcome::Failure("exec probes are not supported".into()));
    }

    #[test]
    fn verdict_changes_only_after_threshold_in_a_row() {
        let p = plan(ProbeAction::Tcp { port: 1 });
        let mut v = Verdict::new(true);
        assert!(v.record(&p, false));
        assert!(v.record(&p, false));
        assert!(v.record(&p, true)); // streak broken
        assert!(v.record(&p, false) && v.record(&p, false));
        assert!(!v.record(&p, false));
        assert!(v.record(&p, true));
    }
}
