//! Keeps the benchmark from rotting: runs `tests/bench/bench.py --smoke` (tiny
//! counts, a few seconds) against the test build of the proxy. Nothing is timed or
//! compared here; the script fails if any step or any redis-benchmark run fails.

use std::process::Command;

#[test]
fn benchmark_smoke_run_completes() {
    let out = Command::new("python3")
        .args([
            "tests/bench/bench.py",
            "--smoke",
            "--binary",
            env!("CARGO_BIN_EXE_ringproxy"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is needed to run the benchmark (see README)");
    assert!(
        out.status.success(),
        "bench.py --smoke failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
