#![no_main]
//! Any bytes through the AdmissionReview handler: it must answer, never panic, and always
//! with JSON the apiserver can read.

use gatehouse_admission_webhook::handler::handle_review;
use gatehouse_policy::{Policy, Snapshot, attacks};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn world() -> &'static (Policy, Snapshot) {
    static WORLD: OnceLock<(Policy, Snapshot)> = OnceLock::new();
    WORLD.get_or_init(|| (Policy::new(attacks::admins()), Snapshot::new(attacks::world())))
}

fuzz_target!(|body: &[u8]| {
    let (policy, snapshot) = world();
    for snapshot in [Some(snapshot), None] {
        let reply = handle_review(policy, snapshot, body);
        assert!(matches!(reply.http_status, 200 | 400));
        let answer: serde_json::Value =
            serde_json::from_slice(&reply.body).expect("every answer is JSON");
        if reply.http_status == 200 {
            assert!(answer["response"]["allowed"].is_boolean());
        }
    }
});
