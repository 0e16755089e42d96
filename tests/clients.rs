//! Real client libraries through the proxy: redis-rs (sync and async, RESP2 and RESP3)
//! and redis-py (tests/py/smoke.py, protocol 2 and 3).

mod common;

use common::*;
use redis::Commands;
use std::collections::HashMap;
use std::process::Command;

fn url(port: u16, resp3: bool) -> String {
    let proto = if resp3 { "?protocol=resp3" } else { "" };
    format!("redis://127.0.0.1:{port}/{proto}")
}

#[test]
fn redis_rs_sync() {
    let cl = Cluster::start(3, "");
    let client = redis::Client::open(url(cl.proxy.port(), false)).unwrap();
    let mut con = client
        .get_connection()
        .expect("redis-rs connect through the proxy");

    let _: () = con.set("rs:a", "1").unwrap();
    let a: String = con.get("rs:a").unwrap();
    assert_eq!(a, "1");
    let missing: Option<String> = con.get("rs:missing").unwrap();
    assert_eq!(missing, None);

    let keys: Vec<String> = (0..40).map(|i| format!("rs:k{i}")).collect();
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), k.to_uppercase())).collect();
    let _: () = con.mset(&pairs).unwrap();
    let mut ask = keys.clone();
    ask.push("rs:missing".into());
    let got: Vec<Option<String>> = con.mget(&ask).unwrap();
    let mut want: Vec<Option<String>> = keys.iter().map(|k| Some(k.to_uppercase())).collect();
    want.push(None);
    assert_eq!(got, want);

    let _: () = con
        .hset_multiple("rs:h", &[("f1", "v1"), ("f2", "v2")])
        .unwrap();
    let h: HashMap<String, String> = con.hgetall("rs:h").unwrap();
    assert_eq!(
        h,
        HashMap::from([("f1".into(), "v1".into()), ("f2".into(), "v2".into())])
    );

    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("rs:p{i}"), i)
            .ignore()
            .incr("rs:counter", 1);
    }
    let counts: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(counts, (1..=500).collect::<Vec<i64>>());

    let deleted: usize = con.del(&keys[..10]).unwrap();
    assert_eq!(deleted, 10);
    let ok: String = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("rs-sync")
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    let got: Option<String> = redis::cmd("CLIENT").arg("GETNAME").query(&mut con).unwrap();
    assert_eq!(got.as_deref(), Some("rs-sync"));
}

async fn async_smoke(port: u16, resp3: bool) {
    let client = redis::Client::open(url(port, resp3)).unwrap();
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis-rs async connect through the proxy");
    let p = if resp3 { "rs3" } else { "rs2" };

    let _: () = redis::cmd("SET")
        .arg(format!("{p}:a"))
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg(format!("{p}:a"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "x");

    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:h"))
        .arg(&["f1", "v1", "f2", "v2"])
        .query_async(&mut con)
        .await
        .unwrap();
    let h: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{p}:h"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(h.len(), 2, "HGETALL {h:?}");
    assert_eq!(h["f2"], "v2");

    // Many concurrent requests multiplexed on one client connection.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mut con = con.clone();
        tasks.spawn(async move {
            let key = format!("{p}:t{i}");
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(i)
                .query_async(&mut con)
                .await
                .unwrap();
            let n: i64 = redis::cmd("INCR")
                .arg(format!("{p}:shared"))
                .query_async(&mut con)
                .await
                .unwrap();
            let back: i64 = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            assert_eq!(back, i);
            n
        });
    }
    let mut seen: Vec<i64> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        seen.push(r.expect("task"));
    }
    seen.sort();
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<i64>>(),
        "INCR results of 200 concurrent tasks"
    );

    let keys: Vec<String> = (0..200).map(|i| format!("{p}:t{i}")).collect();
    let vals: Vec<i64> = redis::cmd("MGET")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(vals, (0..200).collect::<Vec<i64>>());

    let mut pipe = redis::pipe();
    for k in &keys[..50] {
        pipe.cmd("INCRBY").arg(k).arg(1000);
    }
    let after: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(after, (1000..1050).collect::<Vec<i64>>());
    let n: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rs_async_resp2_and_resp3() {
    let cl = Cluster::start(3, "");
    async_smoke(cl.proxy.port(), false).await;
    async_smoke(cl.proxy.port(), true).await;
}

/// Fails (does not skip) when python3 or redis-py is missing: .ci/run installs both.
fn python_with_redis() -> &'static str {
    let out = Command::new("python3")
        .args(["-c", "import redis, sys; print(redis.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => "python3",
        Ok(o) => panic!(
            "redis-py is not installed for python3 (run .ci/run or `pip install redis`): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("python3 not found (run .ci/run): {e}"),
    }
}

#[test]
fn redis_py_smoke_protocol_2_and_3() {
    let py = python_with_redis();
    let cl = Cluster::start(3, "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/smoke.py");
    for proto in ["2", "3"] {
        let out = Command::new("timeout")
            .args([
                "60",
                py,
                script,
                "--port",
                &cl.proxy.port().to_string(),
                "--protocol",
                proto,
            ])
            .output()
            .expect("run smoke.py");
        assert!(
            out.status.success(),
            "tests/py/smoke.py --protocol {proto} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
