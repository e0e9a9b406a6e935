//! The serving certificate follows its files without a restart, and a bad replacement
//! never takes the webhook down.

mod common;

use std::time::{Duration, Instant};

async fn wait_for_cert(
    client: &gatehouse_admission_webhook::client::HttpsClient,
    der: &[u8],
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(served) = client.peer_certificate().await
            && served.as_ref() == der
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections_and_garbage_is_ignored() {
    let t = common::start_world().await;
    let first = t.client.peer_certificate().await.expect("handshake");
    assert_eq!(
        first.as_ref(),
        &t.leaf.der[..],
        "serves the initial certificate"
    );
    // A connection opened before the rotation keeps working across it.
    let mut before = t.client.connect().await.expect("connect");

    let second = t.pki.leaf("webhook-2", 2);
    common::replace(&t.key, second.key_pem.as_bytes());
    common::replace(&t.cert, second.cert_pem.as_bytes());
    assert!(
        wait_for_cert(&t.client, &second.der, Duration::from_secs(5)).await,
        "new certificate not served within 5 s"
    );
    assert_eq!(before.get("/healthz").await.expect("old connection").0, 200);

    // Garbage, then a certificate with someone else's key: both refused, old pair serves.
    common::replace(
        &t.cert,
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    common::replace(&t.key, b"garbage");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let third = t.pki.leaf("webhook-3", 3);
    common::replace(&t.cert, third.cert_pem.as_bytes());
    common::replace(&t.key, second.key_pem.as_bytes());
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let served = t.client.peer_certificate().await.expect("still serving");
    assert_eq!(
        served.as_ref(),
        &second.der[..],
        "a bad pair replaced the good one"
    );
    let mut c = t.client.connect().await.expect("connect");
    let (_, metrics) = c.get("/metrics").await.expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    // Polls can land between the two file writes, so count at least, not exactly.
    assert!(
        value(&metrics, "gatehouse_webhook_cert_reloads_total") >= 1,
        "{metrics}"
    );
    assert!(
        value(&metrics, "gatehouse_webhook_cert_reload_failures_total") >= 2,
        "{metrics}"
    );

    // Fixing the key brings the new certificate in.
    common::replace(&t.key, third.key_pem.as_bytes());
    assert!(wait_for_cert(&t.client, &third.der, Duration::from_secs(5)).await);
}

fn value(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
}
