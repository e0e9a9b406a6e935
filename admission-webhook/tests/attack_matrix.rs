//! The policy crate's tenant-attack matrix, replayed as real AdmissionReviews over HTTPS.

mod common;

use gatehouse_policy::attacks::{self, Expect};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_gets_its_verdict_over_https() {
    let t = common::start_world().await;
    let mut connection = t.client.connect().await.expect("connect");
    let mut failures = Vec::new();
    let cases = attacks::cases();
    for (i, case) in cases.iter().enumerate() {
        let uid = format!("uid-{i}");
        let (status, body) = connection
            .post("/validate", common::review(&uid, &case.request))
            .await
            .expect("review answered");
        assert_eq!(
            status,
            200,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&body)
        );
        let response = common::response(&body);
        assert_eq!(response["uid"], uid.as_str(), "{}: uid echoed", case.name);
        let allowed = response["allowed"].as_bool().expect("allowed is a bool");
        match (&case.expect, allowed) {
            (Expect::Allowed, true) => {}
            (Expect::Denied { reason, mentions }, false) => {
                let status = &response["status"];
                let message = status["message"].as_str().unwrap_or_default();
                if status["reason"] != reason.as_str() {
                    failures.push(format!(
                        "{}: reason {} not {reason}",
                        case.name, status["reason"]
                    ));
                }
                if status["code"] != 403 {
                    failures.push(format!("{}: code {} not 403", case.name, status["code"]));
                }
                if !message.contains(mentions) {
                    failures.push(format!(
                        "{}: message {message:?} lacks {mentions:?}",
                        case.name
                    ));
                }
            }
            (expect, _) => failures.push(format!(
                "{}: expected {expect:?}, got {response}",
                case.name
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 50, "the matrix shrank to {}", cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_decision_by_kind_operation_verdict_and_reason() {
    let t = common::start_world().await;
    let mut connection = t.client.connect().await.expect("connect");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (i, case) in attacks::cases().iter().enumerate() {
        let (status, _) = connection
            .post("/validate", common::review(&format!("m{i}"), &case.request))
            .await
            .expect("review answered");
        assert_eq!(status, 200);
        let (verdict, reason) = match &case.expect {
            Expect::Allowed => ("allowed", ""),
            Expect::Denied { reason, .. } => ("denied", reason.as_str()),
        };
        let op = format!("{:?}", case.request.operation).to_uppercase();
        let series = format!(
            "gatehouse_webhook_decisions_total{{kind=\"{}\",operation=\"{op}\",verdict=\"{verdict}\",reason=\"{reason}\"}}",
            case.request.kind.as_str()
        );
        *expected.entry(series).or_default() += 1;
    }
    let total: u64 = expected.values().sum();
    // Scraped over HTTPS here, and over the plain loopback listener below: both must agree.
    let (status, body) = connection.get("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    for (series, count) in &expected {
        assert!(
            text.contains(&format!("{series} {count}\n")),
            "missing {series} {count} in:\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "gatehouse_webhook_decision_duration_seconds_count {total}\n"
        )),
        "histogram count is not {total}:\n{text}"
    );
    let plain = t.server.metrics_addr.expect("metrics listener");
    let scraped = plain_get(plain, "/metrics").await;
    assert!(scraped.contains(&format!(
        "gatehouse_webhook_decision_duration_seconds_count {total}\n"
    )));
    assert!(plain_get(plain, "/healthz").await.ends_with("ok\n"));
}

async fn plain_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
