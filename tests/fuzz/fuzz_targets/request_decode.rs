//! Client request decoding against redis-protocol: see `reference::check_request`
//! (`tests/resp_reference/reference.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// Shared with tests/resp_reference.rs; each target uses only part of it.
#[allow(dead_code)]
#[path = "../../resp_reference/reference.rs"]
mod reference;

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 {
        return;
    }
    if let Err(e) = reference::check_request(data) {
        panic!("{e}: {data:?}");
    }
});
