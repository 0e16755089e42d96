//! Backend reply framing against redis-protocol: see `ringproxy::resp::reference::check_reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reference decoder recurses once per nesting level: keep inputs small.
    if data.len() > 4096 {
        return;
    }
    if let Err(e) = ringproxy::resp::reference::check_reply(data) {
        panic!("{e}: {data:?}");
    }
});
