//! The node agent against the real control plane (conformance/cluster): started through
//! `conformance/cluster/node up` with this build's binary, it registers a Ready node, runs
//! a Deployment of the conformance suite's echo-basic and a CoreDNS as processes in their
//! own network namespaces, serves `kubectl logs`, restarts a crashing program, refuses
//! unknown images clearly, and leaves nothing behind when pods are deleted and when it stops.
//!
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test sets it) and the image programs from
//! `conformance/images/build`; without the kubeconfig it says so loudly and checks nothing.
//! The test node uses its own name, bridge, prefixes and 198.19.254.0/24, so it does not
//! collide with a node started by hand from the defaults.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const NODE: &str = "agent-test-node";
const CIDR: &str = "198.19.254.0/24";
const BRIDGE: &str = "ghtest0";
const NETNS_PREFIX: &str = "ghtpod-";
const VETH_PREFIX: &str = "ght";
const NS: &str = "node-agent-test";
const WAIT: Duration = Duration::from_secs(60);

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("GATEHOUSE_KUBECONFIG") {
        Some(p) => Some(p.into()),
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: GATEHOUSE_KUBECONFIG is not set, so the node agent was not run \
                 against a real cluster (scripts/test starts one) ***\n"
            );
            None
        }
    }
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(kc: &PathBuf, args: &[&str]) -> String {
    let bin = std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    output(Command::new(bin).arg("--kubeconfig").arg(kc).args(args))
}

/// The test node, stopped through `node down` even when an assertion fails.
struct TestNode {
    state: PathBuf,
}

impl TestNode {
    fn script(&self, verb: &str) -> Command {
        let mut cmd = Command::new(repo("conformance/cluster/node"));
        cmd.arg(verb)
            .env("GATEHOUSE_CLUSTER_STATE", &self.state)
            .env("NODE_NAME", NODE)
            .env("NODE_POD_CIDR", CIDR)
            .env("NODE_BRIDGE", BRIDGE)
            .env("NODE_NETNS_PREFIX", NETNS_PREFIX)
            .env("NODE_VETH_PREFIX", VETH_PREFIX)
            .env("NODE_AGENT_BIN", env!("CARGO_BIN_EXE_gatehouse-node-agent"));
        cmd
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.script("down").output();
    }
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > WAIT => panic!("{what}: not true after {WAIT:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn netns_with_test_prefix() -> Vec<String> {
    output(Command::new("ip").args(["netns", "list"]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .map(str::to_string)
        .collect()
}

fn links_with_test_prefix() -> Vec<String> {
    output(Command::new("ip").args(["-o", "link", "show"]))
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(VETH_PREFIX) || n == BRIDGE)
        .collect()
}

fn http_get(ip: IpAddr, port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(2))
        .map_err(|e| format!("connect {ip}:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: echo\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// A DNS query for `name` (type A, class IN), returning the answer count.
fn dns_answers(server: IpAddr, name: &str) -> Result<u16, String> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&q, (server, 53)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let (n, _) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no DNS answer from {server}: {e}"))?;
    if n < 12 || buf[0..2] != [0x12, 0x34] {
        return Err("malformed DNS answer".into());
    }
    Ok(u16::from_be_bytes([buf[6], buf[7]]) + u16::from_be_bytes([buf[10], buf[11]]))
}

/// GET /healthz on the kubelet API, verifying its certificate against the cluster CA,
/// with or without a client certificate (cert, key PEM files).
async fn kubelet_healthz(
    state: &std::path::Path,
    client: Option<(&str, &str)>,
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = state.join("pki");
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.join("ca.crt")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(pki.join(cert))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(pki.join(key)).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect("198.19.254.1:10250")
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(Ipv4Addr::new(198, 19, 254, 1).into());
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> IpAddr {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap()
        .parse()
        .unwrap()
}

async fn ready_pods(api: &Api<Pod>, app: &str, want: usize) -> Result<Vec<Pod>, String> {
    let pods = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map_err(|e| e.to_string())?;
    let ready: Vec<Pod> = pods.items.into_iter().filter(ready).collect();
    if ready.len() == want {
        Ok(ready)
    } else {
        Err(format!("{} of {want} {app} pods Ready", ready.len()))
    }
}

fn tls_secret() -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["abc.example.com".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "echo-tls", "namespace": NS},
           "type": "kubernetes.io/tls",
           "stringData": {"tls.crt": cert.pem(), "tls.key": key.serialize_pem()}})
}

/// Like the conformance suite's backends: downward-API env, a Secret volume with `items`,
/// HTTPS on 8443 from the mounted files, plus probes of both kinds.
fn echo_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo", "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "echo"}},
          "template": {"metadata": {"labels": {"app": "echo"}}, "spec": {
            "nodeSelector": {"kubernetes.io/hostname": NODE},
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "echo", "image": "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
              "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "TLS_SERVER_CERT", "value": "/etc/secret-volume/crt"},
                {"name": "TLS_SERVER_PRIVKEY", "value": "/etc/secret-volume/key"}],
              "volumeMounts": [{"name": "secret-volume", "mountPath": "/etc/secret-volume"}],
              "readinessProbe": {"httpGet": {"path": "/health", "port": 3000}, "periodSeconds": 1},
              "livenessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 2}}],
            "volumes": [{"name": "secret-volume", "secret": {"secretName": "echo-tls",
              "items": [{"key": "tls.crt", "path": "crt"}, {"key": "tls.key", "path": "key"}]}}]}}}})
}

/// The conformance suite's CoreDNS: ConfigMap volume over /root, `-conf /root/Corefile`.
fn coredns() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": NS},
               "data": {"Corefile": ".:53 {\n    log\n    errors\n}\nfoo.bar.com:53 {\n  whoami\n}\n"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": "dns"}},
              "template": {"metadata": {"labels": {"app": "dns"}}, "spec": {
                "nodeSelector": {"kubernetes.io/hostname": NODE},
                "terminationGracePeriodSeconds": 5,
                "containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.2",
                  "args": ["-conf", "/root/Corefile"],
                  "volumeMounts": [{"name": "conf", "mountPath": "/root"}]}],
                "volumes": [{"name": "conf", "configMap": {"name": "coredns", "defaultMode": 420}}]}}}}),
    ]
}

async fn apply(client: &Client, object: Value) {
    let kind = object["kind"].as_str().unwrap().to_string();
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<kube::api::DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.patch(
        &name,
        &PatchParams::apply("node-agent-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_agent_runs_conformance_backends_on_a_real_cluster() {
    let Some(kc) = kubeconfig() else { return };
    let state = std::env::var_os("GATEHOUSE_CLUSTER_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| kc.parent().unwrap().to_path_buf());
    let node = TestNode { state };
    output(&mut node.script("up"));

    // The node is registered, Ready, with its bridge address and kubelet port.
    let nodes = kubectl(&kc, &["get", "nodes"]);
    let line = nodes
        .lines()
        .find(|l| l.starts_with(NODE))
        .unwrap_or_else(|| panic!("{NODE} missing:\n{nodes}"));
    assert!(line.split_whitespace().nth(1) == Some("Ready"), "{line}");
    let client = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kc).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let n = Api::<Node>::all(client.clone()).get(NODE).await.unwrap();
    let status = n.status.unwrap();
    let addresses = status.addresses.unwrap();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "198.19.254.1"),
        "{addresses:?}"
    );
    assert!(
        status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port
            == 10250
    );

    // The kubelet API serves only clients with a cluster-CA certificate (the API server's
    // kubelet-client one), and its own certificate is the CA-signed one for the node IP.
    let ok = kubelet_healthz(
        &node.state,
        Some((
            "kube-apiserver-kubelet-client.crt",
            "kube-apiserver-kubelet-client.key",
        )),
    )
    .await
    .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok"), "{ok}");
    let anonymous = kubelet_healthz(&node.state, None).await;
    assert!(
        anonymous.is_err(),
        "the kubelet API answered a client without a certificate: {anonymous:?}"
    );

    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    .await;
    apply(&client, tls_secret()).await;
    let applied = Instant::now();
    apply(&client, echo_deployment()).await;
    apply(
        &client,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": NS},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 8080, "targetPort": 3000}]}}),
    )
    .await;
    for o in coredns() {
        apply(&client, o).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let echo = eventually("2 echo pods Ready", || ready_pods(&pods, "echo", 2)).await;
    let _ = writeln!(
        std::io::stderr(),
        "node-agent-test: Deployment apply -> 2 pods Ready in {:.2?}",
        applied.elapsed()
    );

    // Each pod answers on its own 198.19.254.x address, naming itself.
    let cidr_net = Ipv4Addr::new(198, 19, 254, 0);
    let mut ips = Vec::new();
    for pod in &echo {
        let ip = pod_ip(pod);
        let IpAddr::V4(v4) = ip else {
            panic!("{ip} is not IPv4")
        };
        assert_eq!(
            Ipv4Addr::from(u32::from(v4) & 0xffff_ff00),
            cidr_net,
            "{ip}"
        );
        let body = http_get(ip, 3000, "/agent-test").unwrap();
        let echoed: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(
            echoed["pod"],
            pod.metadata.name.clone().unwrap().as_str(),
            "{body}"
        );
        assert_eq!(echoed["namespace"], NS);
        assert_eq!(echoed["path"], "/agent-test");
        // The Secret volume's items reached the program: it serves TLS from them.
        TcpStream::connect_timeout(&SocketAddr::new(ip, 8443), Duration::from_secs(2))
            .unwrap_or_else(|e| {
                panic!("HTTPS port of {ip} (certificate from the Secret volume): {e}")
            });
        let cs = &pod
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0];
        assert!(cs.ready && cs.restart_count == 0, "{cs:?}");
        ips.push(ip.to_string());
    }
    ips.sort();

    // The EndpointSlice controller sees Ready pods with our addresses.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    eventually("EndpointSlice lists both pod IPs", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=echo"))
            .await
            .map_err(|e| e.to_string())?;
        let mut got: Vec<String> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses.clone())
            .collect();
        got.sort();
        if got == ips {
            Ok(())
        } else {
            Err(format!("{got:?} != {ips:?}"))
        }
    })
    .await;

    // kubectl logs goes API server -> kubelet API (client certificate) -> log file.
    let name = echo[0].metadata.name.clone().unwrap();
    let logs = kubectl(&kc, &["-n", NS, "logs", &name, "--tail", "50"]);
    assert!(
        logs.contains("Starting server, listening on port 3000 (http)"),
        "{logs}"
    );
    assert!(
        logs.contains("Echoing back request made to /agent-test"),
        "{logs}"
    );
    let stamped = kubectl(
        &kc,
        &["-n", NS, "logs", &name, "--timestamps", "--tail", "1"],
    );
    assert!(
        stamped.starts_with("20") && stamped.contains('Z'),
        "{stamped}"
    );

    // `kubectl logs -f` streams lines written after it started.
    let mut follow =
        Command::new(std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into()))
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["-n", NS, "logs", "-f", "--tail", "0", &name])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let ip0 = pod_ip(&echo[0]);
    let followed = (0..20).find_map(|_| {
        http_get(ip0, 3000, "/followed").unwrap();
        lines_rx
            .recv_timeout(Duration::from_millis(500))
            .ok()
            .filter(|l| l.contains("/followed"))
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        followed.is_some(),
        "kubectl logs -f did not stream the new request line"
    );

    // CoreDNS with its Corefile from the ConfigMap volume answers whoami queries.
    let dns = eventually("CoreDNS pod Ready", || ready_pods(&pods, "dns", 1)).await;
    let dns_ip = pod_ip(&dns[0]);
    let answers = eventually("CoreDNS answers", || async {
        dns_answers(dns_ip, "foo.bar.com")
    })
    .await;
    assert!(answers > 0, "whoami gave no records");

    // An image the agent cannot map: a clear waiting reason, never Ready.
    let unknown: Pod = serde_json::from_value(json!({"metadata": {"name": "unknown-image", "namespace": NS},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": NODE}, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "web", "image": "docker.io/library/nginx:1.27"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &unknown).await.unwrap();
    let waiting = eventually("unknown image reported", || async {
        let p = pods.get("unknown-image").await.map_err(|e| e.to_string())?;
        let status = p.status.clone().unwrap_or_default();
        let w = status
            .container_statuses
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.clone())
            .ok_or("no waiting state yet")?;
        Ok((w, status.phase.unwrap_or_default(), ready(&p)))
    })
    .await;
    assert_eq!(waiting.0.reason.as_deref(), Some("ErrImageNeverPull"));
    assert_eq!(
        waiting.0.message.as_deref(),
        Some("image docker.io/library/nginx:1.27 is not in the node agent's image map")
    );
    assert_eq!(waiting.1, "Pending");
    assert!(!waiting.2, "a pod whose image cannot run must not be Ready");

    // A program that fails at startup is restarted with backoff; its previous run's
    // output stays readable.
    let crasher: Pod = serde_json::from_value(json!({"metadata": {"name": "crasher", "namespace": NS},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": NODE}, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "echo", "image": "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
                                 "env": [{"name": "HTTP_PORT", "value": "not-a-port"}]}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &crasher).await.unwrap();
    let exit_code = eventually("crasher restarted", || async {
        let p = pods.get("crasher").await.map_err(|e| e.to_string())?;
        let cs = p
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|c| c.into_iter().next())
            .ok_or("no container status yet")?;
        let last = cs
            .last_state
            .and_then(|l| l.terminated)
            .ok_or("no previous run yet")?;
        if cs.restart_count >= 1 && !cs.ready {
            Ok(last.exit_code)
        } else {
            Err(format!("restartCount {}", cs.restart_count))
        }
    })
    .await;
    assert_ne!(exit_code, 0, "a failed start exits non-zero");
    let previous = kubectl(&kc, &["-n", NS, "logs", "crasher", "--previous"]);
    assert!(previous.contains("Failed to start listening"), "{previous}");

    // Deleting everything stops the processes and removes namespaces and veths.
    let spaces = netns_with_test_prefix();
    assert_eq!(spaces.len(), 5, "one netns per pod: {spaces:?}");
    let pids: Vec<String> = spaces
        .iter()
        .flat_map(|ns| {
            output(Command::new("ip").args(["netns", "pids", ns]))
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(pids.len() >= 3, "echo x2 and coredns run: {pids:?}");
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), NS);
    for d in ["echo", "coredns"] {
        deps.delete(d, &DeleteParams::foreground()).await.unwrap();
    }
    for p in ["unknown-image", "crasher"] {
        pods.delete(p, &DeleteParams::default()).await.unwrap();
    }
    eventually("all pods gone from the API", || async {
        let left = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        if left.items.is_empty() {
            Ok(())
        } else {
            Err(format!("{} pods left", left.items.len()))
        }
    })
    .await;
    assert_eq!(netns_with_test_prefix(), Vec::<String>::new());
    for pid in &pids {
        assert!(
            !PathBuf::from(format!("/proc/{pid}")).exists(),
            "process {pid} survived its pod"
        );
    }
    assert_eq!(
        links_with_test_prefix(),
        vec![BRIDGE.to_string()],
        "only the bridge is left while the node runs"
    );

    // Stopping the node removes the bridge too and marks the node NotReady.
    let _ = kubectl(&kc, &["delete", "namespace", NS, "--wait=false"]);
    output(&mut node.script("down"));
    assert_eq!(links_with_test_prefix(), Vec::<String>::new());
    assert_eq!(netns_with_test_prefix(), Vec::<String>::new());
    let n = Api::<Node>::all(client.clone()).get(NODE).await.unwrap();
    let ready_cond = n
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready_cond.status, "False");
    Api::<Node>::all(client)
        .delete(NODE, &DeleteParams::default())
        .await
        .unwrap();
}
