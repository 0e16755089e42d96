"""A minimal RESP2 client: just enough for readiness checks, placement and prefill."""

import socket

from . import tls as tlsmod


class RespError(Exception):
    """An error reply (-ERR ...) or a broken stream."""


def encode(*args):
    """Encodes one command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def read_reply(f):
    """Reads one reply from a buffered binary file; errors come back as RespError values."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RespError("connection closed")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        return RespError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        return read_bulk(f, int(body))
    if kind == b"*":
        n = int(body)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise RespError(f"unexpected reply line {line!r}")


def read_bulk(f, n):
    """Reads a bulk string body of n bytes (None for a null bulk)."""
    if n < 0:
        return None
    data = f.read(n + 2)
    if len(data) != n + 2:
        raise RespError("connection closed")
    return data[:-2]


class Conn:
    """One blocking connection to 127.0.0.1:port (TLS verified against the CA file
    tls_ca when given)."""

    def __init__(self, port, timeout=5.0, tls_ca=""):
        """Connects with the given socket timeout."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_ca:
            try:
                self.sock = tlsmod.wrap(self.sock, tls_ca)
            except BaseException:
                self.sock.close()
                raise
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        """Sends one command and returns its reply; raises RespError on an error reply."""
        self.sock.sendall(encode(*args))
        reply = read_reply(self.file)
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands):
        """Sends many commands in one write and returns their replies (errors as values)."""
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return [read_reply(self.file) for _ in commands]

    def close(self):
        """Closes the connection."""
        self.file.close()
        self.sock.close()

    def __enter__(self):
        """Context manager entry."""
        return self

    def __exit__(self, *exc):
        """Closes on context exit."""
        self.close()


def command(port, *args, timeout=5.0, tls_ca=""):
    """Runs one command on a fresh connection (TLS with tls_ca) and returns its reply."""
    with Conn(port, timeout, tls_ca) as c:
        return c.call(*args)
