#!/usr/bin/env python3
"""ringproxy load benchmark: ringproxy vs nutcracker (and predixy) vs one redis-server.

    python3 tests/bench/bench.py [--quick|--smoke] [--binary PATH] [--out DIR]
                                 [--targets ringproxy,ringproxy-default,nutcracker,direct]
                                 [--baseline PATH [--baseline-label TEXT]] [--tls]
                                 [--predixy PATH]

See tests/bench/README.md for what it measures and how to read the results.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ringbench import load, procs, report, targets as tg, tls  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(BENCH_DIR))
ALL_TARGETS = ("ringproxy", "ringproxy-default", "ringproxy-tls", "ringproxy-tls-both",
               "baseline", "predixy", "predixy-2t", "nutcracker", "direct")
# Run when --targets is not given (baseline joins them when --baseline is, the TLS
# targets when --tls is, the predixy ones when --predixy is).
DEFAULT_TARGETS = ("ringproxy", "ringproxy-default", "nutcracker", "direct")
# predixy with one and with two worker threads (--predixy only).
PREDIXY_TARGETS = {"predixy": 1, "predixy-2t": 2}
# ringproxy with TLS on the client side; and also TLS to the nodes (--tls only).
TLS_TARGETS = ("ringproxy-tls", "ringproxy-tls-both")
# Proxy pairs whose key placement is compared, when both are among the targets.
PLACEMENT_PAIRS = (("ringproxy", "nutcracker"), ("baseline", "nutcracker"),
                   ("ringproxy", "baseline"), ("ringproxy", "ringproxy-tls"),
                   ("ringproxy", "ringproxy-tls-both"), ("ringproxy", "ringproxy-default"),
                   ("predixy", "predixy-2t"))
FD_MARGIN = 2000


def parse_args(argv):
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about 1 minute, 2 rounds")
    size.add_argument("--smoke", action="store_true",
                      help="10-20 s with tiny counts: checks that everything runs (for CI)")
    p.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "release", "ringproxy"),
                   help="ringproxy binary (built with cargo build --release when missing)")
    p.add_argument("--out", default=None,
                   help="results folder (default tests/bench/results; a temp folder for --smoke)")
    p.add_argument("--baseline", default=None, metavar="PATH",
                   help="a second ringproxy binary (e.g. built from an older commit), run as "
                        "target 'baseline' exactly like ringproxy; adds ringproxy/baseline ratios")
    p.add_argument("--baseline-label", default=None, metavar="TEXT",
                   help="names the baseline in the report, e.g. its commit (default: its path)")
    p.add_argument("--predixy", default=None, metavar="PATH",
                   help="a predixy binary: adds the targets predixy (1 thread) and predixy-2t "
                        "(2 threads) over the same nodes (see README for building it)")
    p.add_argument("--targets", default=None,
                   help="comma-separated subset of " + ",".join(ALL_TARGETS) + " (default "
                        + ",".join(DEFAULT_TARGETS) + ", and baseline with --baseline)")
    p.add_argument("--rounds", type=int, default=0, help="override the profile's round count")
    p.add_argument("--scenarios", default="",
                   help="comma-separated scenario keys to run (default: all)")
    p.add_argument("--workers", type=int, default=1,
                   help="ringproxy worker threads (default 1, like single-threaded nutcracker)")
    p.add_argument("--tls", action="store_true",
                   help="adds the targets ringproxy-tls (TLS clients, plain nodes) and "
                        "ringproxy-tls-both (TLS to the nodes too) and a TLS cost table")
    p.add_argument("--keep-logs", action="store_true", help="keep the work folder with logs")
    return p.parse_args(argv)


def profile_of(args):
    """The profile name chosen on the command line."""
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def chosen_targets(args):
    """The targets asked for, in canonical order; exits on unknown names and on
    'baseline' without --baseline."""
    names = requested_targets(args)
    unknown = [t for t in names if t not in ALL_TARGETS]
    if unknown or not names:
        sys.exit(f"unknown --targets {unknown}; choose from {','.join(ALL_TARGETS)}")
    if "baseline" in names:
        check_baseline(args)
    elif args.baseline:
        print("note: --baseline given but 'baseline' is not in --targets: it is not run")
    asked_tls = [t for t in names if t in TLS_TARGETS]
    if asked_tls and not args.tls:
        sys.exit(f"--targets includes {','.join(asked_tls)}: add --tls")
    if args.tls and not asked_tls:
        print("note: --tls given but no TLS target is in --targets: no TLS run")
    check_predixy(args, names)
    return [t for t in ALL_TARGETS if t in names]


def requested_targets(args):
    """The names given with --targets, or the default set (plus baseline with --baseline
    and the TLS targets with --tls)."""
    if args.targets is None:
        return (list(DEFAULT_TARGETS) + (["baseline"] if args.baseline else [])
                + (list(TLS_TARGETS) if args.tls else [])
                + (list(PREDIXY_TARGETS) if args.predixy else []))
    return [t.strip() for t in args.targets.split(",") if t.strip()]


def check_baseline(args):
    """Exits unless --baseline names an executable file (it is never built here)."""
    if not args.baseline:
        sys.exit("--targets includes baseline but no --baseline PATH was given")
    if not (os.path.isfile(args.baseline) and os.access(args.baseline, os.X_OK)):
        sys.exit(f"--baseline {args.baseline}: no executable file there "
                 "(see tests/bench/README.md for how to build one)")


def check_predixy(args, names):
    """Exits when a predixy target is asked for without an executable --predixy PATH."""
    if not any(t in PREDIXY_TARGETS for t in names):
        return
    if not args.predixy:
        sys.exit("--targets includes predixy but no --predixy PATH was given")
    if not (os.path.isfile(args.predixy) and os.access(args.predixy, os.X_OK)):
        sys.exit(f"--predixy {args.predixy}: no executable file there "
                 "(see tests/bench/README.md for how to build one)")


def baseline_label(args):
    """The name the report gives the baseline: --baseline-label, else its path."""
    return args.baseline_label or args.baseline


def chosen_scenarios(args, profile):
    """The profile's scenarios, filtered by --scenarios."""
    all_sc = load.scenarios(profile)
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = set(keys) - {s.key for s in all_sc}
    if unknown:
        sys.exit(f"unknown --scenarios {sorted(unknown)}; choose from "
                 + ",".join(s.key for s in all_sc))
    return [s for s in all_sc if not keys or s.key in keys]


def raise_nofile(needed):
    """Raises RLIMIT_NOFILE toward needed; returns the soft limit obtained."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            needed = hard
    target = needed if soft == resource.RLIM_INFINITY else max(soft, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def fit_idle_to_fds(scenarios):
    """Shrinks idle-connection counts that the file-descriptor limit cannot hold."""
    wanted = max([s.idle for s in scenarios] + [0]) + FD_MARGIN
    limit = raise_nofile(wanted)
    for s in scenarios:
        if s.idle and s.idle + FD_MARGIN > limit:
            s.idle = max(100, limit - FD_MARGIN)
            s.label = f"GET c50 + {s.idle} idle"
            print(f"note: RLIMIT_NOFILE is {limit}: idle test reduced to {s.idle} connections")


def start_targets(group, workdir, nodes, names, args, certs=None):
    """Starts the proxies asked for (the TLS ones with certs); returns {name: Target}."""
    started = {}
    for name in names:
        if name == "ringproxy":
            tg.ensure_binary(args.binary, REPO_ROOT)
            started[name] = tg.start_ringproxy(group, workdir, nodes, args.binary, args.workers)
        elif name in TLS_TARGETS:
            tg.ensure_binary(args.binary, REPO_ROOT)
            both = name == "ringproxy-tls-both"
            started[name] = tg.start_ringproxy(group, workdir, nodes, args.binary, args.workers,
                                               name=name, client_tls=certs,
                                               backend_tls=certs if both else None)
        elif name == "baseline":
            started[name] = tg.start_ringproxy(group, workdir, nodes, args.baseline,
                                               args.workers, name="baseline")
        elif name == "ringproxy-default":
            tg.ensure_binary(args.binary, REPO_ROOT)
            started[name] = tg.start_ringproxy(group, workdir, nodes, args.binary, None,
                                               name=name)
        elif name in PREDIXY_TARGETS:
            started[name] = tg.start_predixy(group, workdir, nodes, args.predixy,
                                             PREDIXY_TARGETS[name], name=name)
        elif name == "nutcracker":
            started[name] = tg.start_nutcracker(group, workdir, nodes)
        else:
            started[name] = tg.direct_target(nodes)
        tls_note = " with TLS" if started[name].tls_ca else ""
        print(f"started {name} on 127.0.0.1:{started[name].port}{tls_note} "
              f"(pid {started[name].pid})")
    return started


def check_placement(started, nodes):
    """Routes the same keys through each proxy; returns a markdown paragraph (nodes left empty)."""
    where = {n: load.placement(t, nodes) for n, t in started.items() if n != "direct"}
    lines = []
    for name, placed in where.items():
        counts = ", ".join(f"{n.name}: {placed.count(n.name)}" for n in nodes)
        lines.append(f"- {name}: {len(placed)} keys → {counts}")
    for a, b in PLACEMENT_PAIRS:
        if a in where and b in where:
            lines.append(compare_placement(a, where[a], b, where[b]))
    return "\n".join(lines) or "(no proxy among the targets)"


def compare_placement(a, placed_a, b, placed_b):
    """One markdown line: on how many keys proxies a and b agree (warns when not all)."""
    same = sum(x == y for x, y in zip(placed_a, placed_b))
    verdict = "identical" if same == len(placed_a) else "**DIFFERENT**"
    if same != len(placed_a):
        print(f"WARNING: {a} and {b} placed {len(placed_a) - same} "
              "keys on different nodes (see Placement in the results)", file=sys.stderr)
    return f"- {a} vs {b}: {same}/{len(placed_a)} keys on the same node ({verdict})"


def rotated(items, k):
    """items rotated left by k, so that each round starts with a different target."""
    k %= len(items)
    return items[k:] + items[:k]


def run_rounds(group, scenarios, started, rounds, nodes=(), more=None):
    """Runs every scenario on every target, alternating targets, for rounds rounds.

    started: {name: Target} over nodes; more: {node count: (nodes, {name: Target})},
    the same targets over another node set, for the scenarios of that many nodes."""
    samples = {sc.key: {t: [] for t in started} for sc in scenarios}
    width = max([10] + [len(t) for t in started])
    for r in range(rounds):
        for sc in scenarios:
            its_nodes, its_targets = (more or {}).get(sc.nodes, (nodes, started))
            for name in rotated(list(started), r):
                s = load.measure(group, sc, its_targets[name], its_nodes)
                samples[sc.key][name].append(s)
                print_sample(r, rounds, sc, name, s, width)
    return {k: {t: load.median_sample(v) for t, v in per.items()} for k, per in samples.items()}


def print_sample(r, rounds, sc, name, s, width=10):
    """One progress line."""
    extra = f"  {s.idle_bytes:,.0f} B/idle conn, ratio {s.idle_ratio:.2f}" if sc.idle else ""
    status = f"  ERROR {s.error}" if s.error else ""
    print(f"[{r + 1}/{rounds}] {sc.label:<22} {name:<{width}} {s.rps:>11,.0f} req/s  "
          f"p50 {s.p50:.3f}  p99 {s.p99:.3f} ms  cpu {s.cpu_per_m:.2f} s/M{extra}{status}",
          flush=True)


def versions(started, args):
    """Software versions (and ringproxy's worker count) for the report."""
    binary = args.binary
    rows = [("redis", tg.tool_version(["redis-server", "--version"])),
            ("redis-benchmark", tg.tool_version(["redis-benchmark", "--version"])),
            ("nutcracker", tg.tool_version(["nutcracker", "--version"]))]
    if "ringproxy" in started or any(t in started for t in TLS_TARGETS):
        rev = tg.tool_version(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"])
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(binary)))
        rows.append(("ringproxy", f"{binary}, built {built} (work tree at git {rev}), "
                                  f"workers: {args.workers}"))
    if "ringproxy-default" in started:
        rows.append(("ringproxy-default", "the same binary with no `workers` line in its "
                                          "config (the default)"))
    if "baseline" in started:
        rows.append(("baseline", baseline_description(args)))
    if any(t in started for t in PREDIXY_TARGETS):
        rows.append(("predixy", f"{os.path.abspath(args.predixy)} ({predixy_version(args)}), "
                                "StandaloneServerPool, Hash crc16, Distribution modula, "
                                "one Group per node; WorkerThreads 1 (predixy) and 2 "
                                "(predixy-2t)"))
    if any(t in started for t in TLS_TARGETS):
        rows.append(("TLS", f"throwaway CA and ECDSA P-256 server certificate for 127.0.0.1 / "
                            f"localhost ({tls.openssl_version()}); redis-benchmark --tls "
                            "--cacert; ringproxy-tls-both talks TLS to the nodes' --tls-port"))
    return rows


def predixy_version(args):
    """What predixy --version prints (its first line), or 'unknown'."""
    return tg.tool_version([args.predixy, "--version"])


def baseline_description(args):
    """The baseline's row in the machine section: label, path, mtime, git commit, version."""
    path = os.path.abspath(args.baseline)
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
    rev = tg.binary_commit(path)
    commit = (f"work tree at git {rev}" if rev else
              "git commit unknown (not in a cargo target folder of a git work tree)")
    label = baseline_label(args)
    named = "" if label == args.baseline else f"**{label}**: "
    return (f"{named}{path}, built {built}, {commit}, "
            f"`--version`: {tg.tool_version([path, '--version'])}, workers: {args.workers}")


def out_dir(args, profile, workdir):
    """Where results go."""
    if args.out:
        return args.out
    if profile == "smoke":
        return os.path.join(workdir, "results")
    return os.path.join(BENCH_DIR, "results")


def write_report(args, profile, ctx, scenarios, names, results, workdir):
    """Writes the markdown (and the chart when matplotlib is there); returns the .md path."""
    date = time.strftime("%Y-%m-%d")
    host = os.uname().nodename.split(".")[0] or "host"
    base = f"{date}-{host}" + ("" if profile == "full" else f"-{profile}")
    chart_tmp = os.path.join(workdir, "chart.png")
    has_chart = report.chart(chart_tmp, scenarios, names, results)
    ctx["date"] = date
    text = report.markdown(ctx, scenarios, names, results, base + ".png" if has_chart else None)
    return report.write_results(out_dir(args, profile, workdir), base, text,
                                chart_tmp if has_chart else None, profile != "smoke")


def benchmark(args, group, workdir):
    """Starts everything, runs every round and writes the report; returns the failed runs."""
    t0 = time.monotonic()
    profile = profile_of(args)
    names, scenarios = chosen_targets(args), chosen_scenarios(args, profile)
    rounds = args.rounds or load.PROFILES[profile]["rounds"]
    fit_idle_to_fds(scenarios)
    certs = tls.make_certs(workdir) if any(t in names for t in TLS_TARGETS) else None
    node_certs = certs if "ringproxy-tls-both" in names else None
    nodes = tg.start_nodes(group, workdir, node_certs)
    started = start_targets(group, workdir, nodes, names, args, certs)
    placement = check_placement(started, nodes)
    load.prefill(nodes, big_sizes(scenarios))
    more = start_more_nodes(group, workdir, scenarios, names, args, certs, node_certs)
    for t in list(started.values()) + [t for _, m in more.values() for t in m.values()]:
        load.warm_up(group, t)
    results = run_rounds(group, scenarios, started, rounds, nodes, more)
    ctx = {"profile": profile, "rounds": rounds, "placement": placement,
           "command": " ".join(["python3 tests/bench/bench.py"] + sys.argv[1:]),
           "versions": versions(started, args), "elapsed": time.monotonic() - t0,
           "baseline": baseline_label(args) if "baseline" in started else None}
    md = write_report(args, profile, ctx, scenarios, names, results, workdir)
    tls_table = report.tls_section(scenarios, names, results)
    if tls_table:
        print("\n" + tls_table)
    print(f"\nresults: {md}  ({time.monotonic() - t0:.0f} s)")
    return [f"{sc.label}/{t}" for sc in scenarios for t in names if results[sc.key][t].error]


def big_sizes(scenarios):
    """The large value sizes the chosen scenarios read (prefilled on the three nodes)."""
    return sorted({sc.value_size for sc in scenarios
                   if sc.value_size != load.VALUE_SIZE and sc.nodes == len(tg.NODE_NAMES)})


def start_more_nodes(group, workdir, scenarios, names, args, certs, node_certs):
    """For scenarios over another node count: that many nodes (prefilled) and every
    target again over them; returns {count: (nodes, {name: Target})}."""
    more = {}
    for count in sorted({sc.nodes for sc in scenarios} - {len(tg.NODE_NAMES)}):
        nodes = tg.start_nodes(group, workdir, node_certs, count, prefix=f"set{count}-")
        sub = os.path.join(workdir, f"nodes{count}")
        os.makedirs(sub, exist_ok=True)
        print(f"{count} more nodes for the {count}-node scenarios:")
        more[count] = (nodes, start_targets(group, sub, nodes, names, args, certs))
        load.prefill(nodes)
    return more


def run(args):
    """The benchmark with cleanup: every started process is stopped; returns the exit code."""
    workdir = tempfile.mkdtemp(prefix="ringbench-")
    group = procs.ProcessGroup()
    keep = True
    try:
        failed = benchmark(args, group, workdir)
        if failed:
            print("FAILED scenarios (see the table): " + ", ".join(failed), file=sys.stderr)
        keep = bool(failed) or args.keep_logs or profile_of(args) == "smoke" and not args.out
        return 1 if failed else 0
    finally:
        group.stop_all()
        if keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    """Entry point: runs the benchmark, cleaning up on any exit, Ctrl-C included."""
    procs.install_signal_handlers()
    try:
        sys.exit(run(parse_args(sys.argv[1:])))
    except KeyboardInterrupt:
        print("\ninterrupted: every started process was stopped", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
