"""The results file (markdown), the chart (PNG) and the machine description."""

import os
import platform
import statistics
import shutil

TARGET_ORDER = ("ringproxy", "ringproxy-default", "ringproxy-tls", "ringproxy-tls-both",
                "baseline", "predixy", "predixy-2t", "nutcracker", "direct")
# (metric attribute, column title, format); lower is better except where noted.
METRICS = (
    ("rps", "req/s (higher is better)", "{:,.0f}"),
    ("p50", "p50 ms", "{:.3f}"),
    ("p99", "p99 ms", "{:.3f}"),
    ("cpu_per_m", "CPU s per M req", "{:.2f}"),
    ("peak_rss", "peak RSS MiB", "{:.1f}"),
)
SPREAD = ("rps_spread", "req/s spread over rounds", "{:.0%}")
IDLE_METRICS = (
    ("idle_bytes", "bytes per idle conn", "{:,.0f}"),
    ("idle_ratio", "req/s with idle ÷ without (higher is better)", "{:.2f}"),
)
RATIOS = (("ringproxy", "predixy"), ("ringproxy", "predixy-2t"), ("ringproxy", "nutcracker"),
          ("ringproxy-default", "predixy"), ("ringproxy-default", "predixy-2t"),
          ("ringproxy-default", "nutcracker"), ("ringproxy", "direct"),
          ("ringproxy-default", "ringproxy"), ("predixy", "direct"), ("nutcracker", "direct"))
# The summary: ringproxy (both configs) against each peer, a few metrics per pair.
SUMMARY_PAIRS = (("ringproxy", "predixy"), ("ringproxy", "predixy-2t"),
                 ("ringproxy", "nutcracker"), ("ringproxy-default", "predixy"),
                 ("ringproxy-default", "predixy-2t"), ("ringproxy-default", "nutcracker"),
                 ("ringproxy", "direct"))
SUMMARY_METRICS = (("rps", "req/s"), ("cpu_per_m", "CPU"), ("p99", "p99"))
# The ringproxy ÷ baseline table: the before/after numbers of a data-path change.
BASELINE_METRICS = (
    ("rps", "req/s (higher is better)"),
    ("p99", "p99 (lower is better)"),
    ("cpu_per_m", "CPU per request (lower is better)"),
)


def machine_info(versions):
    """Rows describing the machine and the software versions, as (name, value) pairs."""
    return [("nproc", str(os.cpu_count())), ("CPU", cpu_model()),
            ("kernel", platform.release()), ("host", platform.node()),
            ("load average (1, 5, 15 min) at the end", load_average())] + list(versions)


def load_average():
    """The load averages, which show whether something else was using the machine."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model():
    """The CPU model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def value_of(sample, attr):
    """A metric's value in report units (peak RSS in MiB)."""
    v = getattr(sample, attr)
    return v / (1 << 20) if attr == "peak_rss" else v


def results_table(scenarios, targets, results):
    """Markdown table: one row per scenario and target with every metric."""
    cols = METRICS + (SPREAD,) + IDLE_METRICS
    lines = ["| scenario | target | " + " | ".join(c[1] for c in cols) + " | status |",
             "|---|---|" + "---:|" * len(cols) + "---|"]
    for sc in scenarios:
        for t in targets:
            s = results[sc.key][t]
            cells = [cell(s, attr, fmt, sc.idle or attr not in ("idle_bytes", "idle_ratio"))
                     for attr, _, fmt in cols]
            status = f"**ERROR** {s.error}" if s.error else "ok"
            lines.append(f"| {sc.label} | {t} | " + " | ".join(cells) + f" | {status} |")
    return "\n".join(lines)


def cell(sample, attr, fmt, applies):
    """One formatted table cell ('–' where the metric does not apply or is missing)."""
    if not applies:
        return "–"
    v = value_of(sample, attr)
    return fmt.format(v) if v else "–"


def ratio_table(scenarios, targets, results):
    """Markdown: one table per target pair (A / B), a row per scenario, a column per metric."""
    pairs = [(a, b) for a, b in RATIOS if a in targets and b in targets]
    if not pairs:
        if len(targets) >= 2:  # e.g. ringproxy and baseline: their table is above
            return "(no pair of ringproxy, predixy, nutcracker, direct among the targets: no ratios here)"
        return "(fewer than two targets: no ratios)"
    cols = METRICS + IDLE_METRICS
    tables = []
    for a, b in pairs:
        lines = [f"**{a} / {b}**", "",
                 "| scenario | " + " | ".join(c[1] for c in cols) + " |",
                 "|---|" + "---:|" * len(cols)]
        for sc in scenarios:
            cells = [ratio(results[sc.key][a], results[sc.key][b], attr)
                     if sc.idle or attr not in ("idle_bytes", "idle_ratio") else "–"
                     for attr, _, _ in cols]
            lines.append(f"| {sc.label} | " + " | ".join(cells) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def summary_section(scenarios, targets, results):
    """Markdown section Summary: per scenario, req/s, CPU per request and p99 of ringproxy
    (and ringproxy-default) ÷ each peer that ran; '' when no such pair ran."""
    pairs = [(a, b) for a, b in SUMMARY_PAIRS if a in targets and b in targets]
    if not pairs:
        return ""
    cols = [(a, b, attr, f"{short(a)} ÷ {b}: {title}") for a, b in pairs
            for attr, title in SUMMARY_METRICS]
    lines = ["## Summary", "",
             "ringproxy (`--workers`, 1 unless given) and ringproxy-default (no `workers` "
             "line: the default) ÷ each peer; median of the per-round ratios. req/s above "
             "1.00 and CPU per request and p99 below 1.00 favour ringproxy.", "",
             "| scenario | " + " | ".join(c[3] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for sc in scenarios:
        cells = [ratio(results[sc.key][a], results[sc.key][b], attr) for a, b, attr, _ in cols]
        lines.append(f"| {sc.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def short(target):
    """A target's name in a narrow column title."""
    return {"ringproxy": "rp", "ringproxy-default": "rp-default"}.get(target, target)


def baseline_section(scenarios, targets, results, label):
    """Markdown section ringproxy ÷ baseline (req/s, p99, CPU per request), or '' when
    no baseline ran. Each cell is the median of the per-round ratios, like every ratio."""
    if "baseline" not in targets:
        return ""
    head = ["## ringproxy ÷ baseline", "",
            f"Baseline: {label}. Both binaries ran with the same config and workers, "
            "alternated with the other targets in every round; below 1.00 CPU per request "
            "means ringproxy does the same work with less CPU than the baseline.", ""]
    if "ringproxy" not in targets:
        return "\n".join(head + ["(ringproxy was not among the targets: no ratios)", ""])
    lines = ["| scenario | " + " | ".join(t for _, t in BASELINE_METRICS) + " |",
             "|---|" + "---:|" * len(BASELINE_METRICS)]
    for sc in scenarios:
        a, b = results[sc.key]["ringproxy"], results[sc.key]["baseline"]
        cells = [ratio(a, b, attr) for attr, _ in BASELINE_METRICS]
        lines.append(f"| {sc.label} | " + " | ".join(cells) + " |")
    return "\n".join(head + lines + [""])


# The TLS cost table (--tls): each TLS target ÷ plain ringproxy.
TLS_TARGETS = ("ringproxy-tls", "ringproxy-tls-both")
TLS_METRICS = (
    ("cpu_per_m", "CPU per request"),
    ("rps", "req/s"),
    ("p99", "p99"),
)


def tls_section(scenarios, targets, results):
    """Markdown section TLS cost: per scenario, CPU per request, req/s and p99 of each TLS
    target ÷ plain ringproxy (median of the per-round ratios), or '' without --tls."""
    tls_targets = [t for t in TLS_TARGETS if t in targets]
    if not tls_targets:
        return ""
    head = ["## TLS cost", "",
            "Each TLS target ÷ plain ringproxy (same binary, config and workers, alternated "
            "in every round; median of the per-round ratios). ringproxy-tls: TLS between "
            "redis-benchmark and the proxy, plain to the nodes; ringproxy-tls-both: TLS on "
            "both sides (the same three redis-servers, on their TLS ports). CPU per request "
            "is the proxy's own CPU; above 1.00 = TLS costs that much more.", ""]
    if "ringproxy" not in targets:
        return "\n".join(head + ["(plain ringproxy was not among the targets: no ratios)", ""])
    cols = [(t, attr, f"{t} ÷ ringproxy: {title}") for t in tls_targets
            for attr, title in TLS_METRICS]
    lines = ["| scenario | " + " | ".join(c[2] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for sc in scenarios:
        plain = results[sc.key]["ringproxy"]
        cells = [ratio(results[sc.key][t], plain, attr) for t, attr, _ in cols]
        lines.append(f"| {sc.label} | " + " | ".join(cells) + " |")
    return "\n".join(head + lines + [""])


def ratio(a, b, attr):
    """a/b for one metric, flagged when either side had errors: the median of the
    per-round ratios, so that drift between rounds (a shared machine) cancels out.
    Bytes per idle connection compares the two summaries (only a first test counts)."""
    flag = " ⚠" if a.error or b.error else ""
    if attr == "idle_bytes" or not a.rounds or len(a.rounds) != len(b.rounds):
        va, vb = value_of(a, attr), value_of(b, attr)
        return f"{va / vb:.2f}{flag}" if va and vb else "–"
    per_round = [value_of(x, attr) / value_of(y, attr)
                 for x, y in zip(a.rounds, b.rounds)
                 if not x.error and not y.error and value_of(x, attr) and value_of(y, attr)]
    if not per_round:
        return "–"
    return f"{statistics.median(per_round):.2f}{flag}"


def noise_warning(scenarios, targets, results):
    """A warning line when the rounds disagreed a lot (a busy machine), else ''."""
    spreads = sorted(results[sc.key][t].rps_spread for sc in scenarios for t in targets)
    typical = spreads[len(spreads) // 2] if spreads else 0.0
    if typical <= 0.3:
        return ""
    return (f"\n⚠ **Noisy run**: req/s typically varied by {typical:.0%} between rounds "
            f"(load average at the end: {load_average()}); something else was using the "
            "machine. CPU per request is less sensitive to this than req/s and latency.\n")


def markdown(ctx, scenarios, targets, results, chart_name):
    """The whole results file."""
    info = "\n".join(f"| {k} | {v} |" for k, v in machine_info(ctx["versions"]))
    errors = [f"- {sc.label} / {t}: {results[sc.key][t].error}"
              for sc in scenarios for t in targets if results[sc.key][t].error]
    parts = [
        f"# ringproxy benchmark — {ctx['date']} on {platform.node()}",
        "",
        f"Profile **{ctx['profile']}**: {ctx['rounds']} round(s), targets alternated "
        f"({', '.join(targets)}) in every round, median reported (ratios: median of "
        f"the per-round ratios). Command: "
        f"`{ctx['command']}`. Wall time {ctx['elapsed']:.0f} s.",
        noise_warning(scenarios, targets, results),
        "",
        "## Machine",
        "",
        "| | |\n|---|---|\n" + info,
        "",
        "## Results",
        "",
        results_table(scenarios, targets, results),
        "",
        f"![throughput and CPU per request]({chart_name})" if chart_name else
        "(no chart: matplotlib was not installed)",
        "",
        *optional(summary_section(scenarios, targets, results)),
        *optional(baseline_section(scenarios, targets, results, ctx.get("baseline"))),
        *optional(tls_section(scenarios, targets, results)),
        "## Ratios",
        "",
        ratio_table(scenarios, targets, results),
        "",
        "## Placement",
        "",
        ctx["placement"],
        "",
        "## Errors",
        "",
        "\n".join(errors) if errors else "None: every redis-benchmark run finished without errors.",
        "",
        NOTES,
    ]
    return "\n".join(parts) + "\n"


def optional(part):
    """[part] when it has text, else []: a missing section leaves no blank line."""
    return [part] if part else []


NOTES = """## What the columns mean

- **req/s, p50, p99**: redis-benchmark `--csv` (latency in ms, as seen by the client).
- **CPU s per M req**: user+system CPU seconds of the target process (`/proc/<pid>/stat`)
  during the run, per million requests (an MGET of 10 keys is one request). For *direct*
  this is redis-server's own CPU, the work the proxies add on top of their backends.
- **peak RSS**: VmHWM of the target process during the run (reset before each run
  with `clear_refs`). For *direct* it includes redis-server's data (100,000 keys).
- **Ratios** (A / B): each round runs the targets back to back, so a round's ratio
  compares runs made under the same conditions; the table gives the median of the
  rounds' ratios (drift on a shared machine between rounds cancels out). It can
  differ from the ratio of the medians in the results table.
- **req/s spread over rounds**: (max − min) / median of req/s over the rounds; a large
  spread means the machine was busy with something else and the numbers are noisy.
- **bytes per idle conn**: RSS growth of the target after opening the idle connections
  (each sent one PING), divided by their number; the largest value over the rounds,
  since processes keep the memory of closed connections for reuse.
- **req/s with idle ÷ without**: the same 50-client GET load run just before and while
  the idle connections are open; 1.00 means idle clients cost the others nothing.
- Everything runs on one machine over loopback: redis-benchmark, the proxy and the three
  redis-servers share the cores, so absolute numbers are lower than on separate hosts;
  compare the ratios.
"""


def write_results(out_dir, base_name, text, chart_tmp, update_latest):
    """Writes <base>.md (and its chart) to out_dir; copies both to latest.* when asked."""
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, base_name + ".md")
    with open(md, "w") as f:
        f.write(text)
    if chart_tmp:
        shutil.move(chart_tmp, os.path.join(out_dir, base_name + ".png"))
    if update_latest:
        shutil.copyfile(md, os.path.join(out_dir, "latest.md"))
    return md


def chart(path, scenarios, targets, results):
    """Draws throughput and CPU per request per scenario and target to path; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, so no PNG chart "
              "(pip install matplotlib to get one)", flush=True)
        return False
    fig, axes = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    draw_bars(axes[0], scenarios, targets, results, "rps", "requests/s (higher is better)")
    draw_bars(axes[1], scenarios, targets, results, "cpu_per_m",
              "CPU seconds per million requests (lower is better)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def draw_bars(ax, scenarios, targets, results, attr, title):
    """One grouped bar chart: a group per scenario, a bar per target."""
    width = 0.8 / len(targets)
    for i, t in enumerate(targets):
        xs = [j + (i - (len(targets) - 1) / 2) * width for j in range(len(scenarios))]
        ys = [getattr(results[sc.key][t], attr) for sc in scenarios]
        ax.bar(xs, ys, width, label=t)
    ax.set_xticks(range(len(scenarios)), [sc.label for sc in scenarios], fontsize=8)
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
