#!/usr/bin/env python3
"""redis-py smoke test against a running ringproxy.

Usage: python3 tests/py/smoke.py --port PORT [--protocol 2|3]

Exits 0 when every check passes; otherwise prints the first mismatch and exits 1.
Run by tests/clients.rs (which starts the proxy and its backends).
"""

import argparse
import sys
import traceback

try:
    import redis
except ImportError:
    sys.exit("redis-py is not installed: run .ci/run or `pip install redis`")


def check(what, got, want):
    if got != want:
        sys.exit(f"MISMATCH {what}: got {got!r}, want {want!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", type=int, choices=(2, 3), default=2)
    args = ap.parse_args()
    p = args.protocol
    r = redis.Redis(host="127.0.0.1", port=args.port, protocol=p,
                    decode_responses=True, socket_timeout=10)
    prefix = f"py{p}:"

    check("ping", r.ping(), True)
    check("set", r.set(prefix + "a", "1"), True)
    check("get", r.get(prefix + "a"), "1")
    check("get missing", r.get(prefix + "missing"), None)

    keys = [f"{prefix}k{i}" for i in range(50)]
    check("mset", r.mset({k: k.upper() for k in keys}), True)
    check("mget", r.mget(keys + [prefix + "missing"]),
          [k.upper() for k in keys] + [None])

    check("hset", r.hset(prefix + "h", mapping={"f1": "v1", "f2": "v2"}), 2)
    check("hgetall", r.hgetall(prefix + "h"), {"f1": "v1", "f2": "v2"})
    check("hget", r.hget(prefix + "h", "f2"), "v2")

    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"{prefix}p{i}", i)
        pipe.get(f"{prefix}p{i}") if i % 2 else pipe.incr(f"{prefix}c{i % 7}")
    res = pipe.execute()
    check("pipeline length", len(res), 2000)
    counts = {}
    for i in range(1000):
        check(f"pipeline set #{i}", res[2 * i], True)
        if i % 2:
            check(f"pipeline get #{i}", res[2 * i + 1], str(i))
        else:
            counts[i % 7] = counts.get(i % 7, 0) + 1
            check(f"pipeline incr #{i}", res[2 * i + 1], counts[i % 7])

    check("incr", r.incr(prefix + "n"), 1)
    check("incrby", r.incrby(prefix + "n", 41), 42)
    check("expire", r.expire(prefix + "n", 100), True)
    ttl = r.ttl(prefix + "n")
    if not 99 <= ttl <= 100:
        sys.exit(f"MISMATCH ttl: got {ttl}, want 99..100")

    check("delete", r.delete(*keys[:10], prefix + "missing"), 10)
    check("exists", r.exists(*keys[:12]), 2)

    check("client setname", r.client_setname("smoke"), True)
    check("client getname", r.client_getname(), "smoke")
    print(f"redis-py {redis.__version__} protocol {p}: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a client error is a failed check too: say where, briefly
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
        where = f"line {frames[-1].lineno}: {frames[-1].line}" if frames else "?"
        sys.exit(f"ERROR at smoke.py {where}\n  {type(e).__name__}: {e}")
