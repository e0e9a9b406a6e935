//! Deltas arrive from the network (admin API, controller stream): decoding and validating
//! any bytes must never panic, and a decoded delta must survive a JSON round trip unchanged.
#![no_main]

use gatehouse_core::model::Delta;
use gatehouse_core::validate::validate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(delta) = serde_json::from_slice::<Delta>(data) {
        for resource in &delta.upserts {
            let _ = validate(resource);
        }
        let again: Delta = serde_json::from_slice(&serde_json::to_vec(&delta).unwrap()).unwrap();
        assert_eq!(again, delta);
    }
});
