//! Where the proxy answers an error itself (arity, numkeys, unknown commands and
//! subcommands, protocol errors), it answers with Redis 7.0's exact bytes: each
//! case goes to one redis-server and to the proxy, and the replies are compared.

mod common;

use common::diff::*;
use common::*;

fn words(line: &str) -> Vec<&[u8]> {
    line.split(' ').map(str::as_bytes).collect()
}

#[test]
fn wrong_arity_and_unknown_subcommands_read_as_in_redis() {
    let p = Pair::start();
    let cases = [
        "GET",
        "GET a b",
        "SET a",
        "MGET",
        "MSET a",
        "MSET a 1 b",
        "DEL",
        "HSET h f",
        "EXPIRE k",
        "PING a b",
        "ECHO",
        "SELECT",
        "HELLO 3 AUTH",
        "CLIENT",
        "CLIENT SETNAME",
        "CLIENT SETNAME a b",
        "CLIENT GETNAME x",
        "CLIENT FOO",
        "OBJECT FOO",
        "XINFO FOO",
        "SCRIPT FOO",
        "COMMAND FOO",
        "FUNCTION FOO",
        "MEMORY FOO",
        "PUBSUB FOO",
        "WATCH",
        "MULTI x",
        "EXEC x",
        "SUBSCRIBE",
        "PUBLISH c",
        "NOSUCHCOMMAND a b",
        "nosuch",
    ];
    for case in cases {
        p.assert_same(case, &[words(case)]);
    }
}

#[test]
fn bad_numkeys_fail_the_way_redis_fails() {
    let p = Pair::start();
    let cases = [
        "EVAL return 1 x",
        "EVAL return 1 -1",
        "EVAL return 1 2 {k}a",
        "EVALSHA 0000000000000000000000000000000000000000 x",
        "FCALL f x",
        "FCALL f 3 {k}a",
        "ZUNION x {k}a",
        "ZUNION 0 {k}a",
        "ZUNION -1 {k}a",
        "ZUNION 3 {k}a {k}b",
        "ZUNIONSTORE {k}d 0 {k}a",
        "ZUNIONSTORE {k}d 2 {k}a",
        "ZINTER 01 {k}a",
        "ZDIFF 2 {k}a",
        "SINTERCARD 0 {k}a",
        "SINTERCARD 2 {k}a",
        "SINTERCARD x {k}a",
        "LMPOP 0 {k}a LEFT",
        // The words after numkeys are keys even where Redis then fails the syntax:
        // keys of one tag, so the proxy does not answer CROSSSLOT first.
        "LMPOP 2 {k}a {k}LEFT",
        "LMPOP x {k}a LEFT",
        "ZMPOP 0 {k}a MIN",
        "ZMPOP 3 {k}a {k}MIN",
        "BLMPOP 0 2 {k}a {k}LEFT",
        "BZMPOP 0 0 {k}a MIN",
        "XREAD STREAMS {k}a",
        "XREAD COUNT 1 STREAMS {k}a {k}b 0",
        "GEORADIUS {k}a 0 0 1 km STORE",
        "SORT {k}a STORE",
        "MIGRATE",
    ];
    for case in cases {
        p.assert_same(case, &[words(case)]);
    }
}

#[test]
fn protocol_errors_read_as_in_redis_and_close_the_connection() {
    let p = Pair::start();
    let cases: [&[u8]; 8] = [
        b"*1\r\nfoo\r\n",
        b"*2\r\n$3\r\nGET\r\n:1\r\n",
        b"*x\r\n",
        b"*01\r\n$4\r\nPING\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"ECHO \"unbalanced\r\n",
    ];
    for bytes in cases {
        let run = |port| {
            let mut c = Conn::connect(port);
            c.send_raw(bytes).unwrap();
            let (got, closed) = c.read_to_close(IO_TIMEOUT);
            assert!(closed, "port {port}: still open after {}", escape(bytes));
            got
        };
        let (want, got) = (run(p.redis.port()), run(p.proxy.port()));
        assert_same(&escape(bytes), &want, &got);
    }
}
