#!/usr/bin/env python3
"""Regenerates src/command/commands.tsv from a real redis-server's COMMAND reply.

Usage: python3 tests/tools/gen_commands.py [path/to/redis-server]

Starts redis-server on a free 127.0.0.1 port (no persistence), waits until it
answers PING, reads COMMAND over a minimal RESP2 client, writes one line per
command and per subcommand, sorted by name, then stops the server.

Columns (tab separated):
  name    lower case; subcommands as container|sub
  arity   Redis arity (N exact, -N at least N, name included)
  flags   command flags, comma separated ('-' when none)
  first, last, step   legacy key positions
  specs   Redis 7 key specs separated by ';' ('-' when none). One spec is
          three space-separated fields: BEGIN FIND FLAGS
            BEGIN: index:N | keyword:KW:STARTFROM | unknown
            FIND:  range:LASTKEY:KEYSTEP:LIMIT | keynum:KEYNUMIDX:FIRSTKEY:KEYSTEP | unknown
            FLAGS: key-spec flags, comma separated ('-' when none)
  acl_categories   ACL categories without the '@', comma separated ('-' when none)
"""

import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "src", "command", "commands.tsv")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Resp:
    """Just enough RESP2 to send commands and read nested replies."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = self.sock.makefile("rb")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self.read()

    def read(self):
        line = self.buf.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("unexpected reply type %r" % kind)


def wait_ready(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited with %s" % proc.returncode)
        try:
            conn = Resp(port)
            if conn.call("PING") == "PONG":
                return conn
        except (OSError, RuntimeError):
            pass
        time.sleep(0.05)
    raise RuntimeError("redis-server did not answer PING in time")


def pairs(flat):
    """A RESP2 flattened map as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


def enc_list(items):
    return ",".join(i.lower() if isinstance(i, str) else str(i) for i in items) or "-"


def enc_begin(bs):
    bs = pairs(bs)
    spec = pairs(bs["spec"])
    if bs["type"] == "index":
        return "index:%d" % spec["index"]
    if bs["type"] == "keyword":
        return "keyword:%s:%d" % (spec["keyword"], spec["startfrom"])
    return "unknown"


def enc_find(fk):
    fk = pairs(fk)
    spec = pairs(fk["spec"])
    if fk["type"] == "range":
        return "range:%d:%d:%d" % (spec["lastkey"], spec["keystep"], spec["limit"])
    if fk["type"] == "keynum":
        return "keynum:%d:%d:%d" % (spec["keynumidx"], spec["firstkey"], spec["keystep"])
    return "unknown"


def enc_spec(ks):
    ks = pairs(ks)
    flags = ",".join(ks.get("flags", [])) or "-"
    return "%s %s %s" % (enc_begin(ks["begin_search"]), enc_find(ks["find_keys"]), flags)


def lines_of(entry):
    name, arity, flags, first, last, step = entry[:6]
    specs = ";".join(enc_spec(s) for s in entry[8]) or "-"
    cats = enc_list(c.lstrip("@") for c in entry[6])
    row = [name.lower(), str(arity), enc_list(flags), str(first), str(last), str(step), specs, cats]
    yield "\t".join(row)
    for sub in entry[9] if len(entry) > 9 else []:
        yield from lines_of(sub)


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "redis-server"
    port = free_port()
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = wait_ready(port, proc)
        version = pairs_info(conn.call("INFO", "server")).get("redis_version", "?")
        rows = sorted(line for entry in conn.call("COMMAND") for line in lines_of(entry))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    header = "# generated by tests/tools/gen_commands.py from redis-server %s COMMAND; " % version
    header += "columns: name arity flags first last step keyspecs acl_categories (format: see the script)\n"
    with open(OUT, "w") as f:
        f.write(header)
        f.write("".join(r + "\n" for r in rows))
    print("wrote %d commands to %s" % (len(rows), OUT))


def pairs_info(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


if __name__ == "__main__":
    main()
