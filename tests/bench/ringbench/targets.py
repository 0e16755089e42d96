"""The processes under test: redis-server nodes (three, or more for the many-nodes
scenarios), and nutcracker, predixy and ringproxy over them."""

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
    # CA file of a TLS listener (clients connect with TLS and verify against it); "" = plain.
    tls_ca: str = ""

    def client_args(self):
        """The redis-benchmark options a client of this target needs (TLS or none)."""
        return ["--tls", "--cacert", self.tls_ca] if self.tls_ca else []


@dataclass
class Node:
    """One backend redis-server; tls_port > 0 when it also serves TLS (--tls-port)."""
    name: str
    port: int
    pid: int
    tls_port: int = 0


def start_redis(group, workdir, name, attempts=3, certs=None):
    """Starts one redis-server on a free port (retrying a lost port race); returns a Node.
    With certs (tls.Certs) it also serves TLS on a second free port (same data)."""
    for _ in range(attempts):
        port = group.free_port()
        log = os.path.join(workdir, f"redis-{name}.log")
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--maxclients", str(MAX_CLIENTS),
                "--protected-mode", "no", "--dir", workdir, "--logfile", ""]
        tls_port = group.free_port() if certs else 0
        if certs:
            argv += ["--tls-port", str(tls_port), "--tls-cert-file", certs.cert,
                     "--tls-key-file", certs.key, "--tls-ca-cert-file", certs.ca,
                     "--tls-auth-clients", "no"]
        proc = group.start(argv, log)
        try:
            procs.wait_ready(proc, port, log)
            if certs:
                procs.wait_ready(proc, tls_port, log, tls_ca=certs.ca)
            return Node(name, port, proc.pid, tls_port)
        except RuntimeError as e:
            error = e
    raise RuntimeError(f"redis-server {name} did not start: {error}")


def node_names(count):
    """The names of count nodes: n1..n<count>."""
    return [f"n{i + 1}" for i in range(count)]


def start_nodes(group, workdir, certs=None, count=len(NODE_NAMES), prefix=""):
    """Starts count backend nodes n1..n<count> (each also on a TLS port with certs);
    prefix tells the log files of a second node set apart."""
    nodes = [start_redis(group, workdir, prefix + name, certs=certs)
             for name in node_names(count)]
    for node, name in zip(nodes, node_names(count)):
        node.name = name
    return nodes


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


def predixy_config(port, nodes, threads, log):
    """Returns the predixy config over nodes with `threads` worker threads: one
    StandaloneServerPool with a fixed Group per node, crc16 modulo placement and {}
    hash tags, logging only warnings and errors (to log)."""
    groups = "".join(f"    Group {n.name} {{\n        + 127.0.0.1:{n.port}\n    }}\n"
                     for n in nodes)
    return (f"Name ringbench\nBind 127.0.0.1:{port}\nWorkerThreads {threads}\n"
            f"ClientTimeout 0\nLog {log}\n"
            "LogVerbSample 0\nLogDebugSample 0\nLogInfoSample 0\nLogNoticeSample 0\n"
            "LogWarnSample 1\nLogErrorSample 1\n"
            "StandaloneServerPool {\n"
            "    Hash crc16\n    HashTag \"{}\"\n    Distribution modula\n"
            "    MasterReadPriority 100\n    RefreshMethod fixed\n"
            "    ServerTimeout 0\n    ServerFailureLimit 10\n    ServerRetryTimeout 1\n"
            "    KeepAlive 0\n" + groups + "}\n")


def start_predixy(group, workdir, nodes, binary, threads, name="predixy"):
    """Starts `BINARY FILE` (predixy) over nodes with `threads` threads; returns its Target."""
    port = group.free_port()
    log = os.path.join(workdir, f"{name}.log")
    conf = write_file(os.path.join(workdir, f"{name}.conf"),
                      predixy_config(port, nodes, threads, log))
    proc = group.start([binary, conf], os.path.join(workdir, f"{name}.out"))
    try:
        procs.wait_ready(proc, port, log, timeout=10)
    except RuntimeError as e:
        raise RuntimeError(f"{name} ({binary}) did not start: {e}") from None
    return Target(name, port, proc.pid)


def ringproxy_config(port, nodes, workers, client_tls=None, backend_tls=None):
    """Returns the ringproxy YAML equivalent to nutcracker_config (twemproxy placement)
    with `workers` event-loop threads (None: no `workers` line, the default). client_tls
    (tls.Certs) makes the listener TLS; backend_tls (tls.Certs) makes it talk TLS to the
    nodes' TLS ports."""
    node_lines = "".join(
        f"  - {{name: {n.name}, addr: 127.0.0.1:{n.tls_port if backend_tls else n.port}}}\n"
        for n in nodes)
    text = (f"listen: 127.0.0.1:{port}\n"
            "admin: null\n"
            + ("" if workers is None else f"workers: {workers}\n") +
            "nodes:\n" + node_lines +
            "hash: {mode: twemproxy, function: fnv1a_64, distribution: ketama, tag: \"{}\"}\n"
            f"limits: {{max_clients: {MAX_CLIENTS}}}\n")
    if client_tls:
        text += f"tls: {{cert: {client_tls.cert}, key: {client_tls.key}}}\n"
    if backend_tls:
        text += f"backend: {{tls: {{ca: {backend_tls.ca}, server_name: localhost}}}}\n"
    return text


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


def start_ringproxy(group, workdir, nodes, binary, workers, name="ringproxy",
                    client_tls=None, backend_tls=None):
    """Starts `BINARY -c FILE` over nodes with `workers` threads (None: the default);
    returns its Target.

    name is the target's name ("ringproxy", "baseline" for an older build of it, or
    "ringproxy-tls"/"ringproxy-tls-both"): it names the config and log files, and every
    target of that kind gets the same config from ringproxy_config (client_tls and
    backend_tls, tls.Certs, as there)."""
    port = group.free_port()
    conf = write_file(os.path.join(workdir, f"{name}.yml"),
                      ringproxy_config(port, nodes, workers, client_tls, backend_tls))
    log = os.path.join(workdir, f"{name}.log")
    proc = group.start([binary, "-c", conf], log)
    ca = client_tls.ca if client_tls else ""
    try:
        procs.wait_ready(proc, port, log, timeout=10, tls_ca=ca)
    except RuntimeError as e:
        raise RuntimeError(f"{name} ({binary}) did not start: {e}") from None
    return Target(name, port, proc.pid, ca)


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
