"""TLS for the --tls scenarios: a throwaway CA and server certificate, client contexts."""

import functools
import os
import ssl
import subprocess
from dataclasses import dataclass


@dataclass
class Certs:
    """PEM files in the work folder: the CA, and a certificate (with its key) for
    127.0.0.1 and localhost that both ringproxy and the TLS redis-servers present."""
    ca: str
    cert: str
    key: str


def make_certs(workdir):
    """Generates a CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) with the
    openssl CLI into workdir/tls; returns Certs. ECDSA P-256 keys (the handshakes,
    counted in the runs' CPU, cost a fraction of RSA 2048's), valid for 2 days."""
    d = os.path.join(workdir, "tls")
    os.makedirs(d, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (os.path.join(d, n) for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "san.ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    openssl(["req", "-x509"] + ec + ["-nodes", "-days", "2",
             "-subj", "/CN=ringbench test CA", "-keyout", ca_key, "-out", ca], d)
    openssl(["req"] + ec + ["-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr], d)
    openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "2", "-extfile", ext, "-out", cert], d)
    return Certs(ca, cert, key)


def openssl(args, cwd):
    """Runs the openssl CLI; raises RuntimeError with its output when it fails."""
    try:
        out = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True,
                             timeout=60)
    except OSError as e:
        raise RuntimeError(f"--tls needs the openssl CLI: {e}") from None
    if out.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({out.returncode}): "
                           + (out.stderr or out.stdout).strip()[-500:])


@functools.lru_cache(maxsize=None)
def client_context(ca):
    """An SSLContext that verifies servers against the CA file ca (hostname checked)."""
    return ssl.create_default_context(cafile=ca)


def wrap(sock, ca):
    """sock wrapped in TLS (handshake done) toward 127.0.0.1, verified against ca."""
    return client_context(ca).wrap_socket(sock, server_hostname="127.0.0.1")


def openssl_version():
    """The openssl CLI's version line, or 'unknown'."""
    try:
        out = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
