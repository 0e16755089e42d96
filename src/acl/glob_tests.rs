//! Known cases of Redis's `stringmatchlen` (from Redis's own util.c tests and the
//! `KEYS` / ACL behaviour of a real server).

use super::matches;

fn m(p: &str, s: &str) -> bool {
    matches(p.as_bytes(), s.as_bytes())
}

#[test]
fn literals_and_wildcards() {
    assert!(m("hello", "hello"));
    assert!(!m("hello", "hell"));
    assert!(!m("hell", "hello"));
    assert!(m("h?llo", "hallo"));
    assert!(!m("h?llo", "hllo"));
    assert!(m("h*llo", "hllo"));
    assert!(m("h*llo", "heeeello"));
    assert!(m("*", "anything"));
    assert!(!m("*", ""), "Redis: * never matches the empty string");
    assert!(m("", ""));
    assert!(!m("", "a"));
    assert!(m("user:*", "user:1"));
    assert!(m("user:*", "user:"));
    assert!(!m("user:*", "users:1"));
    assert!(m("a**b", "axxb"));
    assert!(m("*a*b*", "xxaxxbxx"));
    assert!(!m("*a*b*", "xxbxxaxx"));
}

#[test]
fn classes() {
    assert!(m("h[ae]llo", "hello"));
    assert!(m("h[ae]llo", "hallo"));
    assert!(!m("h[ae]llo", "hillo"));
    assert!(m("h[^e]llo", "hallo"));
    assert!(!m("h[^e]llo", "hello"));
    assert!(m("h[a-b]llo", "hbllo"));
    assert!(!m("h[a-b]llo", "hcllo"));
    assert!(m("h[b-a]llo", "hallo"), "reversed ranges are swapped");
    assert!(m("[\\]]", "]"));
    assert!(!m("[]", "]"));
    assert!(m("a[bc", "ab"), "an unclosed class ends the pattern");
    assert!(m("a[bc", "ac"));
    assert!(!m("a[bc", "abc"));
}

#[test]
fn escapes() {
    assert!(m("h\\*llo", "h*llo"));
    assert!(!m("h\\*llo", "hello"));
    assert!(m("\\?", "?"));
    assert!(!m("\\?", "a"));
    assert!(m("a\\", "a\\"), "a trailing backslash is literal");
}

#[test]
fn abusive_patterns_end() {
    let p = "a*".repeat(50) + "b";
    let s = "a".repeat(60);
    assert!(!m(&p, &s));
    let deep = "*?".repeat(2000);
    let _ = m(&deep, &"x".repeat(3000));
}
