#!/usr/bin/env python3
"""redis-py checks of ringproxy's stateful commands: pub/sub across nodes and
transactions (MULTI/EXEC/WATCH) pinned to one node.

Usage: python3 tests/py/stateful.py --port PORT [--protocol 2|3] --backends P1,P2,P3
       [--only pubsub|transactions]

PORT is the proxy; the backends' ports are used only to look behind the proxy
(CONFIG SET for keyspace notifications, PUBSUB NUMSUB, EXISTS). Exits 0 when every
check passes; otherwise prints the first mismatch and exits 1. Run by
tests/stateful.rs, which starts the proxy and its backends. Every wait is a poll
with a deadline.
"""

import argparse
import sys
import time
import traceback

try:
    import redis
except ImportError:
    sys.exit("redis-py is not installed: run .ci/run or `pip install redis`")

# Longest wait for anything (a message, a confirmation, a backend state).
DEADLINE = 5.0


def check(what, got, want):
    if got != want:
        sys.exit(f"MISMATCH {what}: got {got!r}, want {want!r}")


def fail(what):
    sys.exit(f"FAILED {what}")


def poll(what, fn):
    """Calls fn until it returns a true value; fails after DEADLINE seconds."""
    end = time.monotonic() + DEADLINE
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= end:
            fail(f"timed out after {DEADLINE}s waiting for: {what}")
        time.sleep(0.01)


def next_message(ps, what):
    """The next pub/sub message (confirmations included), within the deadline."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        m = ps.get_message(timeout=max(0.01, end - time.monotonic()))
        if m is not None:
            return m
    fail(f"no pub/sub message within {DEADLINE}s while waiting for: {what}")


def quiet(ps, seconds=0.3):
    """Whatever arrives within `seconds` (used to prove nothing more comes)."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m = ps.get_message(timeout=max(0.01, end - time.monotonic()))
        if m is not None:
            got.append(m)
    return got


class Ctx:
    def __init__(self, args):
        self.proto = args.protocol
        self.port = args.port
        self.r = self.client(args.port)
        self.other = self.client(args.port)  # a second client for "concurrent" work
        self.backends = [self.client(int(p)) for p in args.backends.split(",")]
        if len(self.backends) < 2:
            sys.exit("--backends needs at least two ports")

    def client(self, port):
        return redis.Redis(host="127.0.0.1", port=port, protocol=self.proto,
                           decode_responses=True, socket_timeout=10)

    def holders(self, key):
        """Indexes of the backends holding `key` (looked up directly)."""
        return [i for i, b in enumerate(self.backends) if b.exists(key)]

    def node_of(self, key):
        h = self.holders(key)
        if len(h) != 1:
            fail(f"key {key!r} is on backends {h}, expected exactly one")
        return h[0]


# ---------------------------------------------------------------------------
# pub/sub
# ---------------------------------------------------------------------------

def subscribe_all(ps, channels, kind, start_count=0):
    """Subscribes and checks each confirmation (name and running count)."""
    if kind == "subscribe":
        ps.subscribe(*channels)
    else:
        ps.psubscribe(*channels)
    for i, ch in enumerate(channels):
        m = next_message(ps, f"{kind} confirmation #{i}")
        check(f"{kind} confirmation #{i}",
              (m["type"], m["channel"], m["data"]), (kind, ch, start_count + i + 1))


def pubsub_checks(c):
    p = c.proto
    channels = [f"news.{p}.{i}" for i in range(30)]

    # 30 channels through the proxy, spread over every node.
    ps = c.r.pubsub()
    subscribe_all(ps, channels, "subscribe")
    placement = {}
    for ch in channels:
        owners = [i for i, b in enumerate(c.backends)
                  if b.pubsub_numsub(ch)[0][1] == 1]
        check(f"backends subscribed to {ch}", len(owners), 1)
        placement[ch] = owners[0]
    check("nodes holding the 30 subscriptions",
          sorted(set(placement.values())), list(range(len(c.backends))))

    # A pattern subscriber: its pattern must reach every node.
    pps = c.r.pubsub()
    subscribe_all(pps, [f"news.{p}.*"], "psubscribe")
    for i, b in enumerate(c.backends):
        poll(f"pattern subscribed on backend {i}", lambda b=b: b.pubsub_numpat() == 1)

    # One message per channel from another client: exactly once at each subscriber.
    for i, ch in enumerate(channels):
        check(f"PUBLISH {ch} receivers", c.other.publish(ch, f"m{i}"), 2)
    want = {ch: f"m{i}" for i, ch in enumerate(channels)}
    got = {}
    while len(got) < len(channels):
        m = next_message(ps, f"message {len(got) + 1} of {len(channels)}")
        check("message type", m["type"], "message")
        if m["channel"] in got:
            fail(f"message on {m['channel']} delivered twice")
        got[m["channel"]] = m["data"]
    check("messages received", got, want)
    check("extra messages after all 30", quiet(ps), [])
    pgot = {}
    while len(pgot) < len(channels):
        m = next_message(pps, f"pmessage {len(pgot) + 1} of {len(channels)}")
        check("pmessage type and pattern", (m["type"], m["pattern"]),
              ("pmessage", f"news.{p}.*"))
        if m["channel"] in pgot:
            fail(f"pmessage on {m['channel']} delivered twice")
        pgot[m["channel"]] = m["data"]
    check("pmessages received (channels of every node)", pgot, want)
    check("extra pmessages after all 30", quiet(pps), [])

    # PING in subscribe mode.
    ps.ping()
    if p == 2:
        m = next_message(ps, "pong in subscribe mode")
        check("PING in subscribe mode (RESP2)", (m["type"], m["data"]), ("pong", ""))
    else:
        check("PING in subscribe mode (RESP3)",
              ps.parse_response(block=True, timeout=DEADLINE), "PONG")

    # A regular command while subscribed.
    c.r.set(f"sub:{p}:k", "v")
    if p == 2:
        try:
            ps.execute_command("GET", f"sub:{p}:k")
            m = ps.parse_response(block=True, timeout=DEADLINE)
            fail(f"GET in RESP2 subscribe mode: got {m!r}, want an error")
        except redis.ResponseError as e:
            if "only (P|S)SUBSCRIBE" not in str(e):
                fail(f"GET in RESP2 subscribe mode: wrong error {e}")
    else:
        # RESP3 allows any command while subscribed (Redis 7 does).
        ps.execute_command("GET", f"sub:{p}:k")
        check("GET while subscribed (RESP3)",
              ps.parse_response(block=True, timeout=DEADLINE), "v")

    # Unsubscribe: counts go down to 0, nodes forget the channels.
    ps.unsubscribe(*channels[:10])
    for i, ch in enumerate(channels[:10]):
        m = next_message(ps, f"unsubscribe confirmation #{i}")
        check(f"unsubscribe confirmation #{i}",
              (m["type"], m["channel"], m["data"]), ("unsubscribe", ch, 29 - i))
    ps.unsubscribe()
    counts, names = [], set()
    for i in range(20):
        m = next_message(ps, f"unsubscribe-all confirmation #{i}")
        check("unsubscribe-all type", m["type"], "unsubscribe")
        counts.append(m["data"])
        names.add(m["channel"])
    check("unsubscribe-all counts", counts, list(range(19, -1, -1)))
    check("unsubscribe-all channels", names, set(channels[10:]))
    pps.punsubscribe()
    m = next_message(pps, "punsubscribe confirmation")
    check("punsubscribe", (m["type"], m["channel"], m["data"]),
          ("punsubscribe", f"news.{p}.*", 0))
    for i, b in enumerate(c.backends):
        poll(f"backend {i} has no subscriber left",
             lambda b=b: b.pubsub_numpat() == 0
             and all(n == 0 for _, n in b.pubsub_numsub(*channels)))
    # Back to normal mode on RESP2: regular commands work on that connection again.
    if p == 2:
        ps.execute_command("GET", f"sub:{p}:k")
        check("GET after unsubscribing everything",
              ps.parse_response(block=True, timeout=DEADLINE), "v")
    ps.close()
    pps.close()

    # Keyspace notifications of every node through one pattern subscription.
    for b in c.backends:
        check("CONFIG SET notify-keyspace-events (backend)",
              b.config_set("notify-keyspace-events", "KEA"), True)
    kps = c.r.pubsub()
    subscribe_all(kps, ["__keyspace@0__:*"], "psubscribe")
    kps.subscribe(f"mix.{p}")
    m = next_message(kps, "subscribe confirmation after psubscribe")
    check("count with a pattern and a channel", (m["type"], m["data"]), ("subscribe", 2))
    for i, b in enumerate(c.backends):
        poll(f"keyspace pattern subscribed on backend {i}",
             lambda b=b: b.pubsub_numpat() == 1)
    keys = [f"ks:{p}:{i}" for i in range(30)]
    for k in keys:
        c.other.set(k, "x")
    check("nodes holding the keyspace keys",
          sorted({c.node_of(k) for k in keys}), list(range(len(c.backends))))
    seen = set()
    while seen != set(keys):
        m = next_message(kps, f"keyspace event ({len(seen)} of {len(keys)} seen)")
        if m["type"] != "pmessage":
            fail(f"unexpected message {m!r}")
        ch = m["channel"]
        key = ch[len("__keyspace@0__:"):]
        if key in keys and m["data"] == "set":
            if key in seen:
                fail(f"keyspace event for {key} delivered twice")
            seen.add(key)
    kps.unsubscribe(f"mix.{p}")
    m = next_message(kps, "unsubscribe mix")
    check("unsubscribe with a pattern left", (m["type"], m["data"]), ("unsubscribe", 1))
    kps.punsubscribe("__keyspace@0__:*")
    m = next_message(kps, "punsubscribe keyspace")
    check("punsubscribe keyspace", (m["type"], m["data"]), ("punsubscribe", 0))
    kps.close()
    for b in c.backends:
        b.config_set("notify-keyspace-events", "")


# ---------------------------------------------------------------------------
# transactions
# ---------------------------------------------------------------------------

def transaction_checks(c):
    a, b = "{user:1}.a", "{user:1}.b"
    c.r.delete(a, b)

    pipe = c.r.pipeline(transaction=True)
    pipe.set(a, "1").set(b, "2").incr(a).get(a).get(b).mget(a, b)
    check("MULTI/EXEC with hash-tagged keys", pipe.execute(),
          [True, True, 2, "2", "2", ["2", "2"]])
    check("both tagged keys on one backend", c.holders(a), c.holders(b))
    check("tagged keys held by exactly one backend", len(c.holders(a)), 1)

    # WATCH, no interference: EXEC runs.
    with c.r.pipeline() as pipe:
        pipe.watch(a)
        v = int(pipe.get(a))
        pipe.multi()
        pipe.set(a, v + 10)
        check("WATCH without interference", pipe.execute(), [True])
    check("value after watched transaction", c.r.get(a), "12")

    # WATCH, then another client changes the key: EXEC aborts with WatchError.
    with c.r.pipeline() as pipe:
        pipe.watch(a)
        pipe.get(a)
        check("concurrent SET", c.other.set(a, "changed"), True)
        pipe.multi()
        pipe.set(a, "mine")
        try:
            pipe.execute()
            fail("EXEC after a concurrent change of a watched key: no WatchError")
        except redis.WatchError:
            pass
    check("watched key keeps the concurrent value", c.r.get(a), "changed")
    check("client usable after WatchError", c.r.ping(), True)

    # Two untagged keys on different nodes.
    probes = [f"xn:{c.proto}:{i}" for i in range(40)]
    for k in probes:
        c.r.set(k, "probe")
    by_node = {}
    for k in probes:
        by_node.setdefault(c.node_of(k), k)
    if len(by_node) < 2:
        fail(f"40 probe keys all on one node: {by_node}")
    k1, k2 = list(by_node.values())[:2]
    c.r.delete(*probes)
    for k in (k1, k2):
        check(f"{k} gone before the cross-node MULTI", c.holders(k), [])

    # redis-py pipeline: the transaction fails as a whole.
    pipe = c.r.pipeline(transaction=True)
    pipe.set(k1, "1").set(k2, "2")
    try:
        res = pipe.execute()
        fail(f"cross-node MULTI via pipeline: got {res!r}, want an error")
    except redis.ResponseError as e:
        # redis-py raises the first queued command's error (the -CROSSSLOT line, as
        # ClusterCrossSlotError) when EXEC answers -EXECABORT.
        if not isinstance(e, (redis.exceptions.ClusterCrossSlotError,
                              redis.exceptions.ExecAbortError)):
            fail(f"cross-node MULTI via pipeline: unexpected error {type(e).__name__}: {e}")
    for k in (k1, k2):
        check(f"{k} written by an aborted transaction (pipeline)", c.holders(k), [])

    # The same on one connection, reply by reply.
    conn = c.r.connection_pool.get_connection()
    conn.send_command("MULTI")
    check("MULTI", conn.read_response(), "OK")
    conn.send_command("SET", k1, "1")
    check("SET first key in MULTI", conn.read_response(), "QUEUED")
    conn.send_command("SET", k2, "2")
    try:
        got = conn.read_response()
        fail(f"SET of a key on another node inside MULTI: got {got!r}, want CROSSSLOT")
    except redis.exceptions.ClusterCrossSlotError:
        pass  # redis-py's class for a -CROSSSLOT line
    conn.send_command("EXEC")
    try:
        got = conn.read_response()
        fail(f"EXEC after CROSSSLOT: got {got!r}, want EXECABORT")
    except redis.exceptions.ExecAbortError:
        pass
    conn.send_command("PING")
    check("PING after EXECABORT", conn.read_response(), "PONG")
    c.r.connection_pool.release(conn)
    for k in (k1, k2):
        check(f"{k} written by an aborted transaction (raw)", c.holders(k), [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--protocol", type=int, choices=(2, 3), default=2)
    ap.add_argument("--backends", required=True,
                    help="comma-separated ports of the backends, to look behind the proxy")
    ap.add_argument("--only", choices=("pubsub", "transactions"))
    args = ap.parse_args()
    c = Ctx(args)
    check("ping", c.r.ping(), True)
    if args.only in (None, "pubsub"):
        pubsub_checks(c)
    if args.only in (None, "transactions"):
        transaction_checks(c)
    print(f"redis-py {redis.__version__} protocol {args.protocol}: all stateful checks passed")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # a client error is a failed check too: say where, briefly
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
        where = f"line {frames[-1].lineno}: {frames[-1].line}" if frames else "?"
        sys.exit(f"ERROR at stateful.py {where}\n  {type(e).__name__}: {e}")
