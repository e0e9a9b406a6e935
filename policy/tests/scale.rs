//! Decision latency with 10,000 tenants and 100,000 routes. Ignored by default because
//! timings on a shared CI machine are noise; run it in release:
//! `cargo test --release -p gatehouse-policy --test scale -- --ignored --nocapture`

use gatehouse_policy::testkit::*;
use gatehouse_policy::{Admins, Object, Policy, Request, Snapshot};
use std::time::Instant;

const TENANTS: usize = 10_000;
const ROUTES_PER_TENANT: usize = 10;

#[test]
#[ignore]
fn p99_decision_latency_at_scale() {
    let started = Instant::now();
    let snapshot = Snapshot::new(scale_world(TENANTS, ROUTES_PER_TENANT));
    println!("snapshot build: {:?}", started.elapsed());
    let policy = Policy::new(Admins::default());
    let mut samples = Vec::new();
    for i in 0..2_000 {
        let t = (i * 7919) % TENANTS;
        let victim = (t + 1) % TENANTS;
        let hostnames = [
            format!("new{i}.t{t}.example.com"),
            format!("r0.t{victim}.example.com"),
        ];
        // Alternate an allowed route and a hijack attempt.
        let h: Vec<&str> = hostnames[..1 + i % 2].iter().map(String::as_str).collect();
        let request = Request::create(
            Object::TenantRoute(
                route(&format!("t{t}"), &format!("n{i}"))
                    .hostnames(&h)
                    .tenant_route(),
            ),
            tenant_user(&format!("t{t}")),
        );
        let start = Instant::now();
        let decision = policy.decide(&snapshot, &request);
        samples.push(start.elapsed());
        assert_eq!(decision.is_allowed(), i % 2 == 0, "{decision:?}");
    }
    samples.sort();
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "decisions: p50 {:?} p99 {:?}",
        samples[samples.len() / 2],
        p99
    );
    assert!(p99.as_millis() <= 5, "p99 {p99:?} above 5 ms");
}
