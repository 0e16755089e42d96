#!/usr/bin/env python3
"""Hot-key benchmark: one load where 90% of the GETs go to 10 keys.

    python3 tests/bench/hotkeys_bench.py           # ~2 min on an idle 2-core machine
    python3 tests/bench/hotkeys_bench.py --smoke   # a few seconds: checks that it runs

Load "hot key": 50 clients (two redis-benchmark processes at once: 45 clients GET
hot:<0..9>, 5 clients GET key:<0..99999>, the requests split 90/10) over three
redis-server nodes. Targets, alternated in every round:

- ringproxy            coalescing off, detector on (the defaults)
- ringproxy-coalesce   coalesce: true
- ringproxy-nodetect   hot_keys.enabled: false (the detector's cost)
- ringproxy-sample1    hot_keys.sample: 1 (every request counted)
- ringproxy-near       near_cache: {keys: ["hot:*"]} (the hot keys served from memory)
- nutcracker           twemproxy 0.5.0

Per target: req/s (all requests over the wall time of the two runs), the proxy's
CPU per request (utime+stime from /proc over requests), the backend GETs per client
GET (INFO commandstats of the nodes) and the busiest node's share of the backend
GETs. Then the write-heavy scenario against ringproxy-near: SET on random keys
outside the cached prefix, then SET on the 10 cached keys, each with the
invalidation messages the proxy received per write (from its /metrics). Results go
to tests/bench/results/<date>-hotkeys.md (median over rounds).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ringbench import procs, resp  # noqa: E402
from ringbench import targets as tg  # noqa: E402

HOT_KEYS = 10
KEYSPACE = 100_000
CLIENTS_HOT, CLIENTS_COLD = 45, 5
PROFILES = {"full": (7, 200_000), "quick": (3, 60_000), "smoke": (1, 4_000)}
VARIANTS = {
    "ringproxy": "",
    "ringproxy-coalesce": "coalesce: true\n",
    "ringproxy-nodetect": "hot_keys: {enabled: false}\n",
    "ringproxy-sample1": "hot_keys: {sample: 1}\n",
    "ringproxy-near": "near_cache: {keys: [\"hot:*\"]}\n",
}
MESSAGES = "ringproxy_near_cache_invalidation_messages_total"


def parse_args(argv):
    """Command line: profile, binary, output folder, ringproxy workers."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--binary", default="target/release/ringproxy")
    p.add_argument("--out", default="tests/bench/results")
    p.add_argument("--workers", type=int, default=1)
    return p.parse_args(argv)


def start_variant(group, workdir, nodes, binary, workers, name, extra):
    """Starts ringproxy with the bench config plus `extra` YAML; returns its Target."""
    port, admin = group.free_port(), group.free_port()
    text = tg.ringproxy_config(port, nodes, workers).replace(
        "admin: null", f"admin: 127.0.0.1:{admin}") + extra
    conf = tg.write_file(os.path.join(workdir, f"{name}.yml"), text)
    log = os.path.join(workdir, f"{name}.log")
    proc = group.start([binary, "-c", conf], log)
    procs.wait_ready(proc, port, log, timeout=10)
    t = tg.Target(name, port, proc.pid)
    t.admin = admin
    return t


def metric(target, name):
    """The sum of a metric's series on target's /metrics."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{target.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(ln.split()[-1]) for ln in text.splitlines()
               if ln.startswith(name + "{") or ln.startswith(name + " "))


def write_heavy(group, target, requests):
    """SETs on uncovered random keys, then on the cached keys: messages per write."""
    out = {}
    for label, key, space in (("uncached", "key", KEYSPACE), ("cached", "hot", HOT_KEYS)):
        before = metric(target, MESSAGES)
        argv = bench_argv(target.port, requests, 50, key, space)
        argv[argv.index("GET")] = "SET"
        argv.append("v")
        rc, _, err = group.run(argv, 600)
        if rc != 0:
            raise RuntimeError(f"redis-benchmark SET failed: {err[-200:]}")
        time.sleep(0.2)  # the last pushes
        out[label] = (metric(target, MESSAGES) - before) / requests
    return out


def get_calls(nodes):
    """cmdstat_get calls per node."""
    out = []
    for n in nodes:
        text = resp.command(n.port, "INFO", "commandstats").decode()
        line = next((ln for ln in text.splitlines() if ln.startswith("cmdstat_get:")), "")
        out.append(int(line.split("calls=")[1].split(",")[0]) if line else 0)
    return out


def bench_argv(port, requests, clients, key, space):
    """One redis-benchmark run of GET key:__rand_int__ over `space` keys."""
    return ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q",
            "-n", str(requests), "-c", str(clients), "-r", str(space),
            "GET", f"{key}:__rand_int__"]


def run_once(group, target, nodes, requests):
    """The hot-key load against target: req/s, CPU/request, backend ratio, busiest share."""
    hot, cold = requests * 9 // 10, requests // 10
    before, cpu0, t0 = get_calls(nodes), procs.cpu_seconds(target.pid), time.monotonic()
    runs = [group.start(bench_argv(target.port, hot, CLIENTS_HOT, "hot", HOT_KEYS),
                        os.devnull),
            group.start(bench_argv(target.port, cold, CLIENTS_COLD, "key", KEYSPACE),
                        os.devnull)]
    for r in runs:
        if r.wait(timeout=600) != 0:
            raise RuntimeError(f"redis-benchmark failed against {target.name}")
    wall, cpu1 = time.monotonic() - t0, procs.cpu_seconds(target.pid)
    served = [a - b for a, b in zip(get_calls(nodes), before)]
    total = sum(served) or 1
    return {"rps": requests / wall, "cpu_us": (cpu1 - cpu0) / requests * 1e6,
            "backend_per_get": sum(served) / requests, "busiest": max(served) / total}


def report(results, rounds, requests, workers):
    """The markdown results table (medians over rounds) and the ratios."""
    med = {t: {k: statistics.median(s[k] for s in samples) for k in samples[0]}
           for t, samples in results.items()}
    lines = [f"# Hot-key benchmark ({time.strftime('%Y-%m-%d')})", "",
             f"`python3 tests/bench/hotkeys_bench.py` — {rounds} rounds of {requests} GETs, "
             f"50 clients ({CLIENTS_HOT} on {HOT_KEYS} hot keys, {CLIENTS_COLD} on "
             f"{KEYSPACE} keys; 90/10), 3 nodes, ringproxy workers: {workers}. "
             f"Load average at the end: {os.getloadavg()[0]:.2f}.", "",
             "| target | req/s | CPU µs/request | backend GETs per client GET "
             "| busiest node's share | CPU/request ÷ ringproxy (median of per-round ratios) |",
             "|---|---|---|---|---|---|"]
    for t, m in med.items():
        # The median of the per-round ratios (each round runs every target once).
        ratio = statistics.median(a["cpu_us"] / b["cpu_us"]
                                  for a, b in zip(results[t], results["ringproxy"]))
        lines.append(f"| {t} | {m['rps']:.0f} | {m['cpu_us']:.2f} | "
                     f"{m['backend_per_get']:.3f} | {m['busiest']:.2f} | {ratio:.2f} |")
    lines += ["", "Detector cost: CPU per request with the detector off (ringproxy-nodetect), "
              "on with sampling 1/8 (ringproxy, the default) and 1/1 (ringproxy-sample1).", ""]
    return "\n".join(lines) + "\n"


def main():
    """Runs every round, alternating the targets, and writes the report."""
    args = parse_args(sys.argv[1:])
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    rounds, requests = PROFILES[profile]
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} missing: cargo build --release")
    procs.install_signal_handlers()
    group, workdir = procs.ProcessGroup(), tempfile.mkdtemp(prefix="hotbench-")
    try:
        nodes = tg.start_nodes(group, workdir)
        for i in range(HOT_KEYS):
            for n in nodes:
                resp.command(n.port, "SET", f"hot:{i:012d}", "v" * 64)
        started = [start_variant(group, workdir, nodes, args.binary, args.workers, name, extra)
                   for name, extra in VARIANTS.items()]
        started.append(tg.start_nutcracker(group, workdir, nodes))
        results = {t.name: [] for t in started}
        for r in range(rounds):
            for t in started[r % len(started):] + started[:r % len(started)]:
                s = run_once(group, t, nodes, requests)
                results[t.name].append(s)
                print(f"round {r + 1} {t.name:20} {s['rps']:9.0f} req/s "
                      f"{s['cpu_us']:6.2f} µs/req backend/GET {s['backend_per_get']:.3f} "
                      f"busiest {s['busiest']:.2f}", flush=True)
        near = next(t for t in started if t.name == "ringproxy-near")
        writes = write_heavy(group, near, requests)
        # Put the hot keys back (the write-heavy run changed them).
        for i in range(HOT_KEYS):
            for n in nodes:
                resp.command(n.port, "SET", f"hot:{i:012d}", "v" * 64)
        text = report(results, rounds, requests, args.workers)
        text += ("\nWrite-heavy (ringproxy-near, 50 clients, SET): invalidation messages per "
                 f"write: {writes['uncached']:.4f} on {KEYSPACE} uncached keys, "
                 f"{writes['cached']:.3f} on the {HOT_KEYS} cached keys.\n")
        print("\n" + text)
        if profile != "smoke":
            path = os.path.join(args.out, f"{time.strftime('%Y-%m-%d')}-hotkeys.md")
            tg.write_file(path, text)
            print(f"results: {path}")
    finally:
        group.stop_all()


if __name__ == "__main__":
    main()
