//! Keeps the benchmark from rotting: runs `tests/bench/bench.py --smoke` (tiny
//! counts, a few seconds) against the test build of the proxy, once plain and once
//! with `--tls` (the TLS targets: certificates, TLS listener, TLS to the nodes).
//! Nothing is timed or compared here; the script fails if any step or any
//! redis-benchmark run fails.

use std::process::Command;

fn run_smoke(extra: &[&str]) {
    let out = Command::new("python3")
        .args([
            "tests/bench/bench.py",
            "--smoke",
            "--binary",
            env!("CARGO_BIN_EXE_ringproxy"),
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is needed to run the benchmark (see README)");
    assert!(
        out.status.success(),
        "bench.py --smoke {:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        extra,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn benchmark_smoke_run_completes() {
    run_smoke(&[]);
}

#[test]
fn benchmark_smoke_run_with_tls_completes() {
    run_smoke(&[
        "--tls",
        "--targets",
        "ringproxy,ringproxy-tls,ringproxy-tls-both",
    ]);
}
