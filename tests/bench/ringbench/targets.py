"""The processes under test: three redis-server nodes, nutcracker and ringproxy over them."""

import os
import subprocess
from dataclasses import dataclass

from . import procs

NODE_NAMES = ("n1", "n2", "n3")
MAX_CLIENTS = 20000


@dataclass
class Target:
    """Something redis-benchmark talks to; pid is the process whose CPU and memory count."""
    name: str
    port: int
    pid: int


@dataclass
class Node:
    """One backend redis-server."""
    name: str
    port: int
    pid: int


def start_redis(group, workdir, name, attempts=3):
    """Starts one redis-server on a free port (retrying a lost port race); returns a Node."""
    for _ in range(attempts):
        port = group.free_port()
        log = os.path.join(workdir, f"redis-{name}.log")
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--maxclients", str(MAX_CLIENTS),
                "--protected-mode", "no", "--dir", workdir, "--logfile", ""]
        proc = group.start(argv, log)
        try:
            procs.wait_ready(proc, port, log)
            return Node(name, port, proc.pid)
        except RuntimeError as e:
            error = e
    raise RuntimeError(f"redis-server {name} did not start: {error}")


def start_nodes(group, workdir):
    """Starts the three backend nodes n1..n3."""
    return [start_redis(group, workdir, name) for name in NODE_NAMES]


def nutcracker_config(port, nodes):
    """Returns the nutcracker YAML for one pool over nodes (ketama, fnv1a_64, {} tags)."""
    servers = "".join(f"    - 127.0.0.1:{n.port}:1 {n.name}\n" for n in nodes)
    return ("bench:\n"
            f"  listen: 127.0.0.1:{port}\n"
            "  hash: fnv1a_64\n"
            "  distribution: ketama\n"
            "  hash_tag: \"{}\"\n"
            "  redis: true\n"
            "  auto_eject_hosts: false\n"
            "  server_connections: 1\n"
            "  preconnect: true\n"
            "  servers:\n" + servers)


def ringproxy_config(port, nodes, workers):
    """Returns the ringproxy YAML equivalent to nutcracker_config (twemproxy placement)
    with `workers` event-loop threads."""
    node_lines = "".join(f"  - {{name: {n.name}, addr: 127.0.0.1:{n.port}}}\n" for n in nodes)
    return (f"listen: 127.0.0.1:{port}\n"
            "admin: null\n"
            f"workers: {workers}\n"
            "nodes:\n" + node_lines +
            "hash: {mode: twemproxy, function: fnv1a_64, distribution: ketama, tag: \"{}\"}\n"
            f"limits: {{max_clients: {MAX_CLIENTS}}}\n")


def write_file(path, text):
    """Writes text to path and returns path."""
    with open(path, "w") as f:
        f.write(text)
    return path


def start_nutcracker(group, workdir, nodes):
    """Starts nutcracker over nodes (stats on a free loopback port); returns its Target."""
    port, stats = group.free_port(), group.free_port()
    conf = write_file(os.path.join(workdir, "nutcracker.yml"), nutcracker_config(port, nodes))
    log = os.path.join(workdir, "nutcracker.log")
    argv = ["nutcracker", "-c", conf, "-s", str(stats), "-a", "127.0.0.1",
            "-p", os.path.join(workdir, "nutcracker.pid"), "-o", log]
    proc = group.start(argv, log)
    procs.wait_ready(proc, port, log)
    return Target("nutcracker", port, proc.pid)


def start_ringproxy(group, workdir, nodes, binary, workers, name="ringproxy"):
    """Starts `BINARY -c FILE` over nodes with `workers` threads; returns its Target.

    name is the target's name ("ringproxy", or "baseline" for an older build of it):
    it names the config and log files, and every target of that kind gets the same
    config from ringproxy_config."""
    port = group.free_port()
    conf = write_file(os.path.join(workdir, f"{name}.yml"), ringproxy_config(port, nodes, workers))
    log = os.path.join(workdir, f"{name}.log")
    proc = group.start([binary, "-c", conf], log)
    try:
        procs.wait_ready(proc, port, log, timeout=10)
    except RuntimeError as e:
        raise RuntimeError(f"{name} ({binary}) did not start: {e}") from None
    return Target(name, port, proc.pid)


def direct_target(nodes):
    """The 'direct' target: node n1 itself, the limit a proxy approaches."""
    n1 = nodes[0]
    return Target("direct", n1.port, n1.pid)


def ensure_binary(binary, repo_root):
    """Runs `cargo build --release` in repo_root when binary is missing; raises if still missing."""
    if os.path.exists(binary):
        return
    print(f"{binary} is missing: running cargo build --release", flush=True)
    rc = subprocess.call(["cargo", "build", "--release"], cwd=repo_root)
    if rc != 0 or not os.path.exists(binary):
        raise RuntimeError(f"cargo build --release failed (exit {rc}) or gave no {binary}")


def binary_commit(binary):
    """The git commit of the work tree a binary was built in, or None when unknown.

    Only a binary still at <repo>/target/<profile>/<name> of a git work tree is
    traced back (and then only to the work tree's HEAD now, which may have moved on
    since the build); a copied binary has no such trace."""
    profile_dir = os.path.dirname(os.path.abspath(binary))
    target_dir = os.path.dirname(profile_dir)
    root = os.path.dirname(target_dir)
    if os.path.basename(target_dir) != "target" or not os.path.exists(
            os.path.join(root, "Cargo.toml")):
        return None
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def tool_version(argv):
    """Returns the first line a tool prints for its version, or 'unknown'."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
