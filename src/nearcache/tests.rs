//! Which replies are the same in both RESP versions.

use super::same_in_both_versions as same;

#[test]
fn only_replies_equal_in_resp2_and_resp3_are_shared() {
    for r in [&b"$3\r\nabc\r\n"[..], b":1\r\n", b"+OK\r\n", b"-ERR x\r\n"] {
        assert!(same(r), "{r:?}");
    }
    for r in [
        &b"_\r\n"[..],
        b"$-1\r\n",
        b"%1\r\n",
        b"~0\r\n",
        b",1.5\r\n",
        b"*1\r\n",
    ] {
        assert!(!same(r), "{r:?}");
    }
}
