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
# stderr lines of redis-benchmark that are not errors (a proxy refuses CONFIG GET).
BENIGN_STDERR = ("WARNING: Could not fetch server CONFIG",)

# Requests per scenario and profile; idle = idle connections opened.
PROFILES = {
    "full": {"rounds": 7, "p1": 100_000, "p16": 300_000, "mget": 40_000, "c1000": 100_000,
             "idle_load": 60_000, "idle": 10_000},
    "quick": {"rounds": 2, "p1": 30_000, "p16": 100_000, "mget": 15_000, "c1000": 30_000,
              "idle_load": 30_000, "idle": 10_000},
    "smoke": {"rounds": 1, "p1": 2_000, "p16": 8_000, "mget": 1_000, "c1000": 3_000,
              "idle_load": 2_000, "idle": 300},
}


@dataclass
class Scenario:
    """One load shape: redis-benchmark arguments, or the idle-connection test when idle > 0."""
    key: str
    label: str
    requests: int
    clients: int
    pipeline: int
    command: list = field(default_factory=list)
    tests: str = ""
    idle: int = 0

    def argv(self, port, extra=()):
        """The redis-benchmark command line for this scenario against 127.0.0.1:port
        (extra: more options, e.g. --tls --cacert FILE)."""
        argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--csv",
                "-n", str(self.requests), "-c", str(self.clients), "-P", str(self.pipeline),
                "-r", str(KEYSPACE), "-d", str(VALUE_SIZE)] + list(extra)
        if self.tests:
            argv += ["-t", self.tests]
        return argv + self.command


def scenarios(profile):
    """The scenarios of a profile, in run order."""
    p = PROFILES[profile]
    mget = ["mget"] + ["key:__rand_int__"] * MGET_KEYS
    return [
        Scenario("set_p1", "SET P1 c50", p["p1"], 50, 1, tests="set"),
        Scenario("get_p1", "GET P1 c50", p["p1"], 50, 1, tests="get"),
        Scenario("set_p16", "SET P16 c50", p["p16"], 50, 16, tests="set"),
        Scenario("get_p16", "GET P16 c50", p["p16"], 50, 16, tests="get"),
        Scenario("mget10", "MGET×10 P1 c50", p["mget"], 50, 1, command=mget),
        Scenario("get_c1000", "GET P1 c1000", p["c1000"], 1000, 1, tests="get"),
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
        time.sleep(0.2)  # let the target settle its accept work before sampling RSS
        rss1 = procs.status_bytes(target.pid, "VmRSS") if procs.alive(target.pid) else rss0
        loaded = run_benchmark(group, scenario, target)
    finally:
        close_all(socks)
    loaded.idle_bytes = (rss1 - rss0) / scenario.idle
    loaded.idle_ratio = loaded.rps / base.rps
    return loaded


def measure(group, scenario, target):
    """Runs one scenario against one target; returns a Sample."""
    if scenario.idle:
        return run_idle(group, scenario, target)
    return run_benchmark(group, scenario, target)


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


def prefill(nodes, chunk=10_000):
    """Writes every benchmark key (key:%012d, 64-byte value) to every node."""
    value = b"v" * VALUE_SIZE
    for node in nodes:
        with resp.Conn(node.port, timeout=30) as c:
            for start in range(0, KEYSPACE, chunk):
                cmds = [("SET", b"key:%012d" % i, value)
                        for i in range(start, min(start + chunk, KEYSPACE))]
                bad = [r for r in c.pipeline(cmds) if r != "OK"]
                if bad:
                    raise RuntimeError(f"prefill of {node.name} failed: {bad[0]}")


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
