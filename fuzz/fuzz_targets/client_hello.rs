//! The ClientHello parser sees raw bytes from any client: it must never panic, and a result
//! it returns must be consistent with the input.
#![no_main]

use gatehouse_core::client_hello::{MAX_HELLO, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = parse(data) {
        assert!(data.len() >= 5);
        if let Some(name) = hello.server_name {
            assert!(!name.is_empty() && name.len() <= MAX_HELLO);
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }
});
