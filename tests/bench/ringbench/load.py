"""Load generation: scenarios, redis-benchmark runs, idle connections, data prefill."""

import csv
import io
import socket
import statistics
import time
from dataclasses import dataclass, field

from . import procs, resp
from . import tls as tlsmod

KEYSPACE = 100_000
VALUE_SIZE = 64
MGET_KEYS = 10
MGET_MANY = 100
# The many-nodes scenarios' node count (the others run over three nodes).
MANY_NODES = 25
# Large values live under their own keys (BIG_KEYS per size, prefilled on every node);
# the large SETs write key:0..BIG_KEYS-1, which are set back to 64 bytes afterwards.
BIG_KEYS = 100
KIB = 1024
# Seconds between opening the idle connections and sampling RSS (see run_idle).
IDLE_SETTLE_S = 2.5
# stderr lines of redis-benchmark that are not errors (a proxy refuses CONFIG GET).
BENIGN_STDERR = ("WARNING: Could not fetch server CONFIG",)

# Requests per scenario and profile; idle = idle connections opened; many_clients:
# the clients of get_c5000 (fewer in smoke: 5,000 TLS handshakes of a debug build
# would take minutes).
PROFILES = {
    "full": {"rounds": 3, "p1": 50_000, "p16": 250_000, "p128": 500_000, "mget": 25_000,
             "mget100": 4_000, "v16k": 25_000, "v512k": 800, "c1000": 50_000,
             "c5000": 50_000, "many_clients": 5_000, "idle_load": 40_000, "idle": 10_000},
    "quick": {"rounds": 2, "p1": 20_000, "p16": 100_000, "p128": 200_000, "mget": 10_000,
              "mget100": 2_000, "v16k": 10_000, "v512k": 300, "c1000": 20_000,
              "c5000": 20_000, "many_clients": 5_000, "idle_load": 20_000, "idle": 10_000},
    "smoke": {"rounds": 1, "p1": 2_000, "p16": 8_000, "p128": 16_000, "mget": 1_000,
              "mget100": 200, "v16k": 500, "v512k": 50, "c1000": 3_000, "c5000": 1_000,
              "many_clients": 500, "idle_load": 2_000, "idle": 300},
}


@dataclass
class Scenario:
    """One load shape: redis-benchmark arguments, or the idle-connection test when idle > 0.

    nodes: how many backend nodes the proxies spread it over; keyspace and value_size:
    redis-benchmark's -r and -d; restore: the run overwrote key:0..keyspace-1 with
    values of value_size, which are set back to VALUE_SIZE bytes after it."""
    key: str
    label: str
    requests: int
    clients: int
    pipeline: int
    command: list = field(default_factory=list)
    tests: str = ""
    idle: int = 0
    nodes: int = 3
    keyspace: int = KEYSPACE
    value_size: int = VALUE_SIZE
    restore: bool = False

    def argv(self, port, extra=()):
        """The redis-benchmark command line for this scenario against 127.0.0.1:port
        (extra: more options, e.g. --tls --cacert FILE)."""
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--csv",
                "-n", str(self.requests), "-c", str(self.clients), "-P", str(self.pipeline),
                "-r", str(self.keyspace), "-d", str(self.value_size)] + list(extra)
        if self.tests:
            argv += ["-t", self.tests]
        return argv + self.command


def big_prefix(size):
    """The key prefix of the prefilled values of size bytes (big16k: for 16 KiB)."""
    return f"big{size // KIB}k:"


def big_value_scenarios(p, size, count):
    """SET and GET of size-byte values over BIG_KEYS keys, count requests each."""
    kib = f"{size // KIB} KiB"
    return [
        Scenario(f"set_{size // KIB}k", f"SET {kib} P1 c50", count, 50, 1, tests="set",
                 keyspace=BIG_KEYS, value_size=size, restore=True),
        Scenario(f"get_{size // KIB}k", f"GET {kib} P1 c50", count, 50, 1,
                 command=["get", big_prefix(size) + "__rand_int__"], keyspace=BIG_KEYS,
                 value_size=size),
    ]


# The large value sizes measured (bytes); prefill writes BIG_KEYS of each.
BIG_SIZES = (16 * KIB, 512 * KIB)


def scenarios(profile):
    """The scenarios of a profile, in run order."""
    p = PROFILES[profile]
    mget = ["mget"] + ["key:__rand_int__"] * MGET_KEYS
    mget100 = ["mget"] + ["key:__rand_int__"] * MGET_MANY
    many = f"{MANY_NODES} nodes"
    return [
        Scenario("set_p1", "SET P1 c50", p["p1"], 50, 1, tests="set"),
        Scenario("get_p1", "GET P1 c50", p["p1"], 50, 1, tests="get"),
        Scenario("set_p16", "SET P16 c50", p["p16"], 50, 16, tests="set"),
        Scenario("get_p16", "GET P16 c50", p["p16"], 50, 16, tests="get"),
        Scenario("set_p128", "SET P128 c50", p["p128"], 50, 128, tests="set"),
        Scenario("get_p128", "GET P128 c50", p["p128"], 50, 128, tests="get"),
        Scenario("mget10", "MGET×10 P1 c50", p["mget"], 50, 1, command=mget),
        Scenario("mget100", "MGET×100 P1 c50", p["mget100"], 50, 1, command=mget100),
        *big_value_scenarios(p, BIG_SIZES[0], p["v16k"]),
        *big_value_scenarios(p, BIG_SIZES[1], p["v512k"]),
        Scenario("get_c1000", "GET P1 c1000", p["c1000"], 1000, 1, tests="get"),
        Scenario("get_c5000", f"GET P1 c{p['many_clients']}", p["c5000"], p["many_clients"], 1,
                 tests="get"),
        Scenario("get_p1_n25", f"GET P1 c50, {many}", p["p1"], 50, 1, tests="get",
                 nodes=MANY_NODES),
        Scenario("get_p16_n25", f"GET P16 c50, {many}", p["p16"], 50, 16, tests="get",
                 nodes=MANY_NODES),
        Scenario("idle", f"GET c50 + {p['idle']} idle", p["idle_load"], 50, 1, tests="get",
                 idle=p["idle"]),
    ]


@dataclass
class Sample:
    """The result of one redis-benchmark run against one target."""
    rps: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    cpu_per_m: float = 0.0
    peak_rss: int = 0
    error: str = ""
    idle_bytes: float = 0.0
    idle_ratio: float = 0.0
    rps_spread: float = 0.0
    # For a median: the samples of each round, in round order (ratios are taken
    # round by round, between runs made minutes apart at most).
    rounds: list = field(default_factory=list)


def parse_csv(text):
    """Returns the last data row of redis-benchmark --csv output as a dict, or None."""
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows[-1] if rows else None


def stderr_errors(err):
    """Returns the error lines of redis-benchmark's stderr (benign warnings dropped)."""
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith(BENIGN_STDERR)]


def run_benchmark(group, scenario, target):
    """Runs redis-benchmark for scenario against target and measures the target process."""
    if not procs.alive(target.pid):
        return Sample(error=f"{target.name} process (pid {target.pid}) is not running")
    timeout = 60 + scenario.requests / 2000
    peak_reset = procs.reset_peak_rss(target.pid)
    cpu0 = procs.cpu_seconds(target.pid)
    rc, out, err = group.run(scenario.argv(target.port, target.client_args()), timeout)
    if not procs.alive(target.pid):
        return Sample(error=f"{target.name} process (pid {target.pid}) died during the run")
    cpu1 = procs.cpu_seconds(target.pid)
    sample = Sample(cpu_per_m=(cpu1 - cpu0) / scenario.requests * 1e6,
                    peak_rss=procs.status_bytes(target.pid, "VmHWM" if peak_reset else "VmRSS"))
    row, errors = parse_csv(out), stderr_errors(err)
    if row and row.get("rps"):
        sample.rps = float(row["rps"])
        sample.p50 = float(row["p50_latency_ms"])
        sample.p99 = float(row["p99_latency_ms"])
    if rc != 0 or errors or not sample.rps:
        sample.error = (errors[0] if errors else f"redis-benchmark exit {rc}, no result row")[:160]
    return sample


def open_idle(port, count, batch=200, tls_ca=""):
    """Opens count connections to port (TLS with tls_ca), PINGs each once; returns the sockets."""
    socks = []
    try:
        while len(socks) < count:
            opened = []
            try:
                for _ in range(min(batch, count - len(socks))):
                    opened.append(connect(port, tls_ca))
            finally:
                socks += opened
            for s in opened:
                s.sendall(resp.encode("PING"))
            for s in opened:
                expect_pong(s)
    except BaseException:
        close_all(socks)
        raise
    return socks


def connect(port, tls_ca=""):
    """One blocking loopback connection that closes with a reset (no TIME_WAIT left behind);
    TLS (handshake done, verified against tls_ca) when tls_ca is given."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if tls_ca:
        try:
            s = tlsmod.wrap(s, tls_ca)
        except BaseException:
            s.close()
            raise
    return s


def expect_pong(s):
    """Reads +PONG from socket s; raises otherwise."""
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(64)
        if not chunk:
            raise RuntimeError("idle connection closed by the server before PONG")
        data += chunk
    if data != b"+PONG\r\n":
        raise RuntimeError(f"idle connection got {data!r} instead of PONG")


def close_all(socks):
    """Closes every socket in socks."""
    for s in socks:
        s.close()


def run_idle(group, scenario, target):
    """Idle test: GET load without, then with scenario.idle idle sessions open; returns a Sample."""
    base = run_benchmark(group, scenario, target)
    if base.error:
        return base
    rss0 = procs.status_bytes(target.pid, "VmRSS")
    try:
        socks = open_idle(target.port, scenario.idle, tls_ca=target.tls_ca)
    except (OSError, RuntimeError) as e:
        return Sample(error=f"idle connections: {e}"[:160])
    try:
        # Let the target settle before sampling RSS: its accept work, and ringproxy
        # parks clients idle for a second (frees their serving state, checked once a
        # second), which is what idle clients cost it for most of their life.
        time.sleep(IDLE_SETTLE_S)
        rss1 = procs.status_bytes(target.pid, "VmRSS") if procs.alive(target.pid) else rss0
        loaded = run_benchmark(group, scenario, target)
    finally:
        close_all(socks)
    loaded.idle_bytes = (rss1 - rss0) / scenario.idle
    loaded.idle_ratio = loaded.rps / base.rps
    return loaded


def measure(group, scenario, target, nodes=()):
    """Runs one scenario against one target; returns a Sample. A scenario that
    overwrote small values (restore) sets them back on nodes afterwards."""
    if scenario.idle:
        return run_idle(group, scenario, target)
    try:
        return run_benchmark(group, scenario, target)
    finally:
        if scenario.restore:
            restore_small(nodes, scenario.keyspace)


def median_sample(samples):
    """Median of each metric over the error-free samples; errors are kept, joined.

    Bytes per idle connection is the maximum instead: a process keeps the memory of
    closed connections for reuse, so only its first idle test shows the real cost.
    """
    good = [s for s in samples if not s.error] or samples
    med = Sample(**{k: statistics.median(getattr(s, k) for s in good)
                    for k in ("rps", "p50", "p99", "cpu_per_m", "peak_rss", "idle_ratio")})
    med.idle_bytes = max(s.idle_bytes for s in good)
    med.rounds = list(samples)
    rps = [s.rps for s in good]
    med.rps_spread = (max(rps) - min(rps)) / med.rps if med.rps and len(rps) > 1 else 0.0
    errors = sorted({s.error for s in samples if s.error})
    if errors:
        failed = sum(1 for s in samples if s.error)
        med.error = f"{failed}/{len(samples)} runs failed: " + "; ".join(errors)
    return med


def prefill(nodes, big=(), chunk=10_000):
    """Writes every benchmark key (key:%012d, 64-byte value) to every node, and for each
    size in big BIG_KEYS keys of that size (big_prefix(size) + %012d)."""
    for node in nodes:
        with resp.Conn(node.port, timeout=30) as c:
            write_keys(c, node, b"key:", KEYSPACE, VALUE_SIZE, chunk)
            for size in big:
                write_keys(c, node, big_prefix(size).encode(), BIG_KEYS, size,
                           max(1, chunk * VALUE_SIZE // size))


def write_keys(c, node, prefix, count, size, chunk):
    """SETs prefix%012d for i < count to size-byte values over connection c, chunk per
    pipeline; raises when a node refuses one."""
    value = b"v" * size
    for start in range(0, count, chunk):
        cmds = [("SET", prefix + b"%012d" % i, value)
                for i in range(start, min(start + chunk, count))]
        bad = [r for r in c.pipeline(cmds) if r != "OK"]
        if bad:
            raise RuntimeError(f"prefill of {node.name} failed: {bad[0]}")


def restore_small(nodes, count):
    """Sets key:0..count-1 back to their 64-byte values on every node."""
    for node in nodes:
        with resp.Conn(node.port, timeout=30) as c:
            write_keys(c, node, b"key:", count, VALUE_SIZE, count)


def placement(target, nodes, count=300):
    """SETs count keys through target and returns the node name holding each key (then flushes)."""
    keys = [f"place:{i}:{{t{i % 7}}}x" if i % 3 == 0 else f"place:{i}" for i in range(count)]
    with resp.Conn(target.port, tls_ca=target.tls_ca) as c:
        for reply in c.pipeline([("SET", k, "1") for k in keys]):
            if reply != "OK":
                raise RuntimeError(f"SET through {target.name} failed: {reply}")
    where = {}
    for node in nodes:
        with resp.Conn(node.port) as c:
            for k, found in zip(keys, c.pipeline([("EXISTS", k) for k in keys])):
                if found == 1:
                    where[k] = node.name
            c.call("FLUSHALL")
    return [where.get(k, "?") for k in keys]


def warm_up(group, target):
    """A short unrecorded GET run so that first-connection costs do not skew round one."""
    run_benchmark(group, Scenario("warm", "warm-up", 5_000, 50, 1, tests="get"), target)
