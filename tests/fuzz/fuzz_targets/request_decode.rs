//! Client request decoding against redis-protocol: see `ringproxy::resp::reference::check_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 4096 {
        return;
    }
    if let Err(e) = ringproxy::resp::reference::check_request(data) {
        panic!("{e}: {data:?}");
    }
});
