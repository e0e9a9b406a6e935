//! Malformed and hostile bodies straight through `handle_review`, the function the HTTP
//! layer calls and the fuzz target drives: every one gets an answer the apiserver can read.

mod common;

use gatehouse_admission_webhook::handler::handle_review;
use gatehouse_policy::{Policy, Snapshot, attacks};
use serde_json::Value;

fn corpus() -> Vec<Vec<u8>> {
    let valid: Vec<Vec<u8>> = attacks::cases()
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, c)| common::review(&format!("c{i}"), &c.request))
        .collect();
    let mut corpus: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        "[".repeat(100_000).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)).into_bytes(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":1}}"#.to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"gatehouse.dev","kind":"TenantRoute"},"operation":"DELETE"}}"#.to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"","kind":"Namespace"},"operation":"UPDATE","object":{"metadata":{"name":"a","labels":{"x":7}}}}}"#.to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"gatehouse.dev","kind":"Tenant"},"operation":"CREATE","object":"a string","userInfo":{"groups":null}}}"#.to_vec(),
    ];
    for body in &valid {
        // Every prefix cut at a few points, and single-byte corruptions.
        for cut in [1, body.len() / 3, body.len() / 2, body.len() - 1] {
            corpus.push(body[..cut].to_vec());
        }
        for at in (0..body.len()).step_by(body.len() / 17 + 1) {
            let mut flipped = body.clone();
            flipped[at] ^= 0x20;
            corpus.push(flipped);
        }
        // Each top-level request field replaced by a value of the wrong type.
        let parsed: Value = serde_json::from_slice(body).expect("valid review");
        for field in [
            "uid",
            "kind",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "name",
        ] {
            for wrong in [
                Value::Null,
                Value::from(42),
                Value::from("x"),
                Value::Array(vec![]),
            ] {
                let mut broken = parsed.clone();
                broken["request"][field] = wrong;
                corpus.push(serde_json::to_vec(&broken).expect("json"));
            }
        }
    }
    corpus.extend(valid);
    corpus
}

#[test]
fn every_malformed_body_gets_a_readable_answer() {
    let policy = Policy::new(attacks::admins());
    let snapshot = Snapshot::new(attacks::world());
    let corpus = corpus();
    let (mut ok, mut bad) = (0, 0);
    for body in &corpus {
        for snapshot in [Some(&snapshot), None] {
            let reply = handle_review(&policy, snapshot, body);
            let answer: Value = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
                panic!(
                    "answer to {:?} is not JSON: {e}",
                    String::from_utf8_lossy(body)
                )
            });
            match reply.http_status {
                200 => {
                    ok += 1;
                    let response = &answer["response"];
                    assert!(response["uid"].is_string(), "{answer}");
                    if response["allowed"] == false {
                        let message = response["status"]["message"].as_str().unwrap_or("");
                        assert!(!message.is_empty(), "a denial without a message: {answer}");
                    }
                }
                400 => {
                    bad += 1;
                    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
                }
                other => panic!("status {other} for {:?}", String::from_utf8_lossy(body)),
            }
        }
    }
    assert!(
        ok > 100 && bad > 100,
        "corpus lost its spread: {ok} answered, {bad} rejected"
    );
}
