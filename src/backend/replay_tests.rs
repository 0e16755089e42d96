use super::*;

fn rec(log: &ReplayLog, args: &[&str]) {
    let req = Request::from_args(args);
    log.record(entry_for(&req).expect("a logged command"));
}

/// The logged requests, as space-joined words.
fn lines(log: &ReplayLog) -> Vec<String> {
    log.snapshot()
        .1
        .iter()
        .map(|f| {
            let text = String::from_utf8_lossy(f).into_owned();
            text.split("\r\n")
                .skip(2)
                .step_by(2)
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

const LIB_A: &str = "#!lua name=a\nredis.register_function('fa', function() return 1 end)";
const LIB_B: &str = "#!lua name=b\nredis.register_function('fb', function() return 2 end)";

#[test]
fn only_script_and_function_changes_are_logged() {
    for line in ["SCRIPT EXISTS x", "FUNCTION LIST", "GET k", "SCRIPT KILL"] {
        let args: Vec<&str> = line.split(' ').collect();
        assert_eq!(entry_for(&Request::from_args(&args)), None, "{line}");
    }
    assert_eq!(library_name(LIB_A.as_bytes()).as_deref(), Some(&b"a"[..]));
    assert_eq!(
        library_name(b"#!lua   engine=x name=lib2 \nbody").as_deref(),
        Some(&b"lib2"[..])
    );
    assert_eq!(library_name(b"no header"), None);
}

#[test]
fn loads_are_replayed_with_replace_and_kept_once() {
    let log = ReplayLog::default();
    rec(&log, &["SCRIPT", "LOAD", "return 1"]);
    rec(&log, &["script", "load", "return 1"]);
    rec(&log, &["FUNCTION", "LOAD", LIB_A]);
    rec(&log, &["FUNCTION", "LOAD", "REPLACE", LIB_A]);
    rec(&log, &["FUNCTION", "LOAD", LIB_B]);
    assert_eq!(
        lines(&log),
        [
            "SCRIPT LOAD return 1".to_string(),
            format!("FUNCTION LOAD REPLACE {LIB_A}"),
            format!("FUNCTION LOAD REPLACE {LIB_B}"),
        ]
    );
    rec(&log, &["FUNCTION", "DELETE", "a"]);
    assert_eq!(
        lines(&log)[1..],
        [
            format!("FUNCTION LOAD REPLACE {LIB_B}"),
            "FUNCTION DELETE a".into()
        ]
    );
}

#[test]
fn flushes_drop_what_they_flush() {
    let log = ReplayLog::default();
    rec(&log, &["SCRIPT", "LOAD", "return 1"]);
    rec(&log, &["FUNCTION", "LOAD", LIB_A]);
    rec(&log, &["FUNCTION", "RESTORE", "payload"]);
    rec(&log, &["SCRIPT", "FLUSH"]);
    assert_eq!(
        lines(&log),
        [
            format!("FUNCTION LOAD REPLACE {LIB_A}"),
            "FUNCTION RESTORE payload REPLACE".into(),
            "SCRIPT FLUSH".into(),
        ]
    );
    rec(&log, &["SCRIPT", "LOAD", "return 2"]);
    rec(&log, &["FUNCTION", "FLUSH", "ASYNC"]);
    assert_eq!(
        lines(&log),
        [
            "SCRIPT FLUSH",
            "SCRIPT LOAD return 2",
            "FUNCTION FLUSH ASYNC"
        ]
    );
    rec(&log, &["FUNCTION", "RESTORE", "p2", "FLUSH"]);
    assert_eq!(lines(&log)[2..], ["FUNCTION RESTORE p2 FLUSH"]);
}

#[test]
fn since_returns_what_came_later_and_the_log_is_bounded() {
    let log = ReplayLog::default();
    rec(&log, &["SCRIPT", "LOAD", "return 1"]);
    let (seq, frames) = log.snapshot();
    assert_eq!(frames.len(), 1);
    rec(&log, &["SCRIPT", "LOAD", "return 2"]);
    assert_eq!(log.since(seq).1.len(), 1);
    let big = "x".repeat(MAX_LOG_BYTES / 2);
    rec(&log, &["SCRIPT", "LOAD", &format!("--{big}")]);
    let before = log.bytes();
    rec(&log, &["SCRIPT", "LOAD", &format!("--{big}y")]);
    assert_eq!(log.bytes(), before, "a full log drops the entry");
    assert!(log.bytes() <= MAX_LOG_BYTES);
    rec(&log, &["SCRIPT", "FLUSH"]);
    let (seq, _) = log.snapshot();
    rec(&log, &["SCRIPT", "LOAD", &format!("--{big}y")]);
    assert_eq!(log.since(seq).1.len(), 1, "room again after a flush");
}
