#!/usr/bin/env python3
"""Cluster benchmark: ringproxy in cluster mode vs a cluster-aware client driving a
Redis Cluster directly (redis-benchmark --cluster), same GET/SET P1 and P16 load.

    python3 tests/bench/cluster_bench.py [--binary PATH] [--rounds N] [--out DIR]
                                         [--smoke] [--workers N]

A cluster of 3 primaries (no replicas: replication would add CPU to both sides
alike) on free loopback ports; ringproxy fronts it with `cluster: {seeds}`. Each
round runs every scenario against both targets, in alternating order, and the
report gives medians over rounds of: requests per second, p50/p99 latency, and CPU
per request (µs) of the proxy, of the cluster nodes (summed) and of the client
(redis-benchmark), with ratios ringproxy ÷ direct taken round by round.
"""

import argparse
import datetime
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ringbench import load, procs, resp  # noqa: E402
from ringbench.targets import ensure_binary  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))
PRIMARIES = 3
KEYSPACE = 100_000
VALUE_SIZE = 64
CLIENTS = 50
# Requests per scenario run: (P1, P16).
PROFILES = {"full": (60_000, 300_000), "smoke": (2_000, 8_000)}
TARGETS = ("ringproxy", "direct")


def parse_args(argv):
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "release", "ringproxy"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="ringproxy worker threads")
    p.add_argument("--smoke", action="store_true", help="tiny counts, one round (checks it runs)")
    p.add_argument("--out", default=os.path.join(BENCH_DIR, "results"))
    return p.parse_args(argv)


def scenarios(profile):
    """(key, label, requests, pipeline, test) in run order."""
    p1, p16 = PROFILES[profile]
    return [("set_p1", "SET P1 c50", p1, 1, "set"), ("get_p1", "GET P1 c50", p1, 1, "get"),
            ("set_p16", "SET P16 c50", p16, 16, "set"), ("get_p16", "GET P16 c50", p16, 16, "get")]


def start_node(group, workdir, i):
    """One cluster-enabled redis-server on a free port; returns (port, pid)."""
    port, bus = group.free_port(), group.free_port()
    d = os.path.join(workdir, f"node{i}")
    os.makedirs(d)
    # The bus port is given (by default it is port + 10000: maybe taken, or past 65535).
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file",
            "nodes.conf", "--cluster-port", str(bus), "--dir", d, "--logfile", "",
            "--maxclients", "4000"]
    log = os.path.join(workdir, f"node{i}.log")
    proc = group.start(argv, log)
    procs.wait_ready(proc, port, log)
    return port, proc.pid


def start_cluster(group, workdir):
    """PRIMARIES nodes joined with redis-cli --cluster create; waits for cluster_state:ok."""
    nodes = [start_node(group, workdir, i) for i in range(PRIMARIES)]
    addrs = [f"127.0.0.1:{p}" for p, _ in nodes]
    rc, out, err = group.run(["redis-cli", "--cluster", "create", *addrs,
                              "--cluster-replicas", "0", "--cluster-yes"], 60)
    if rc != 0:
        raise RuntimeError(f"redis-cli --cluster create failed: {out}{err}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        infos = [resp.command(p, "CLUSTER", "INFO") for p, _ in nodes]
        if all("cluster_state:ok" in str(i) for i in infos):
            return nodes
        time.sleep(0.05)
    raise RuntimeError("the cluster did not reach cluster_state:ok")


def start_proxy(group, workdir, binary, nodes, workers):
    """ringproxy in cluster mode over nodes; returns (port, pid) once it routes keys."""
    port = group.free_port()
    seeds = ", ".join(f"127.0.0.1:{p}" for p, _ in nodes)
    conf = os.path.join(workdir, "ringproxy.yml")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nadmin: null\nworkers: {workers}\n"
                f"cluster:\n  seeds: [{seeds}]\nlimits:\n  max_clients: 4000\n"
                "log:\n  level: warn\n")
    log = os.path.join(workdir, "ringproxy.log")
    proc = group.start([binary, "-c", conf], log)
    procs.wait_ready(proc, port, log, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if resp.command(port, "SET", "bench:ready", "1") == "OK":
            return port, proc.pid
        time.sleep(0.05)
    raise RuntimeError("ringproxy did not read the slot map:\n" + procs.log_tail(log))


def children_cpu():
    """CPU seconds of every waited-for child so far (redis-benchmark runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(group, sc, target, proxy, nodes):
    """One redis-benchmark run of scenario sc against target; returns a result dict."""
    _key, _label, requests, pipeline, test = sc
    port = proxy[0] if target == "ringproxy" else nodes[0][0]
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--csv", "-n",
            str(requests), "-c", str(CLIENTS), "-P", str(pipeline), "-r", str(KEYSPACE),
            "-d", str(VALUE_SIZE), "-t", test]
    if target == "direct":
        argv.append("--cluster")
    node_cpu0 = sum(procs.cpu_seconds(pid) for _, pid in nodes)
    proxy_cpu0 = procs.cpu_seconds(proxy[1])
    client0 = children_cpu()
    rc, out, err = group.run(argv, 120 + requests / 2000)
    per = 1e6 / requests
    res = {
        "proxy_us": (procs.cpu_seconds(proxy[1]) - proxy_cpu0) * per if target == "ringproxy"
        else 0.0,
        "nodes_us": (sum(procs.cpu_seconds(pid) for _, pid in nodes) - node_cpu0) * per,
        "client_us": (children_cpu() - client0) * per,
        "error": "",
    }
    # In --cluster mode redis-benchmark lists the primaries before the CSV.
    csv_at = out.find('"test",')
    row, errors = load.parse_csv(out[max(csv_at, 0):]), load.stderr_errors(err)
    if rc != 0 or not row or not row.get("rps") or errors:
        res["error"] = (errors[0] if errors else f"exit {rc}, no result row: {out[-200:]!r}")[:300]
        res.update(rps=0.0, p50=0.0, p99=0.0)
        return res
    res.update(rps=float(row["rps"]), p50=float(row["p50_latency_ms"]),
               p99=float(row["p99_latency_ms"]))
    return res


def run_rounds(group, scs, proxy, nodes, rounds):
    """results[key][target] = list of per-round dicts; target order alternates."""
    results = {sc[0]: {t: [] for t in TARGETS} for sc in scs}
    for r in range(rounds):
        order = TARGETS if r % 2 == 0 else tuple(reversed(TARGETS))
        for sc in scs:
            for t in order:
                res = run_one(group, sc, t, proxy, nodes)
                results[sc[0]][t].append(res)
                print(f"round {r + 1}/{rounds} {sc[1]:<12} {t:<9} {res['rps']:>10.0f} req/s "
                      f"proxy {res['proxy_us']:.2f} µs nodes {res['nodes_us']:.2f} µs "
                      f"client {res['client_us']:.2f} µs {res['error']}", flush=True)
    return results


def med(runs, field):
    """Median of field over runs."""
    return statistics.median(r[field] for r in runs)


def ratio(a, b, field):
    """Median over rounds of a[i][field] / b[i][field]."""
    pairs = [x[field] / y[field] for x, y in zip(a, b) if y[field]]
    return statistics.median(pairs) if pairs else float("nan")


def report(scs, results, rounds, workers):
    """The markdown report."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load1 = os.getloadavg()[0]
    lines = [
        "# ringproxy cluster mode vs redis-benchmark --cluster",
        "",
        f"{now}; {os.cpu_count()} CPUs, load average {load1:.1f} at the end; {PRIMARIES} "
        f"primaries (redis-server {redis_version()}), ringproxy workers: {workers}; "
        f"{CLIENTS} clients, {KEYSPACE} keys, {VALUE_SIZE}-byte values; {rounds} alternating "
        "rounds, medians (ratios: median of per-round ratios).",
        "",
        "CPU per request in µs: the proxy process, the cluster nodes summed, the client "
        "(redis-benchmark). `direct` is redis-benchmark `--cluster` (a cluster-aware client "
        "with one connection per client per primary).",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | proxy µs | nodes µs | client µs "
        "| errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for sc in scs:
        for t in TARGETS:
            runs = results[sc[0]][t]
            errs = "; ".join(sorted({r["error"] for r in runs if r["error"]}))
            lines.append(f"| {sc[1]} | {t} | {med(runs, 'rps'):.0f} | {med(runs, 'p50'):.3f} "
                         f"| {med(runs, 'p99'):.3f} | {med(runs, 'proxy_us'):.2f} "
                         f"| {med(runs, 'nodes_us'):.2f} | {med(runs, 'client_us'):.2f} "
                         f"| {errs} |")
    lines += ["", "| scenario | req/s ringproxy ÷ direct | p99 ringproxy ÷ direct "
              "| node CPU ringproxy ÷ direct |", "|---|---:|---:|---:|"]
    for sc in scs:
        a, b = results[sc[0]]["ringproxy"], results[sc[0]]["direct"]
        lines.append(f"| {sc[1]} | {ratio(a, b, 'rps'):.2f} | {ratio(a, b, 'p99'):.2f} "
                     f"| {ratio(a, b, 'nodes_us'):.2f} |")
    return "\n".join(lines) + "\n"


def redis_version():
    """redis-server's version string."""
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), "?")


def main():
    """Runs the benchmark and writes the report."""
    args = parse_args(sys.argv[1:])
    procs.install_signal_handlers()
    ensure_binary(args.binary, REPO_ROOT)
    profile = "smoke" if args.smoke else "full"
    rounds = 1 if args.smoke else args.rounds
    group = procs.ProcessGroup()
    with tempfile.TemporaryDirectory(prefix="ringproxy-cluster-bench-") as workdir:
        try:
            nodes = start_cluster(group, workdir)
            proxy = start_proxy(group, workdir, args.binary, nodes, args.workers)
            scs = scenarios(profile)
            results = run_rounds(group, scs, proxy, nodes, rounds)
        finally:
            group.stop_all()
    text = report(scs, results, rounds, args.workers)
    print(text)
    if not args.smoke:
        os.makedirs(args.out, exist_ok=True)
        name = datetime.date.today().isoformat() + "-cluster.md"
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
        print(f"written to {os.path.join(args.out, name)}")
    failed = any(r["error"] for per in results.values() for runs in per.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
