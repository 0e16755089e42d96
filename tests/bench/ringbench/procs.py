"""Child processes of the benchmark: start, track, measure and always clean up."""

import atexit
import os
import signal
import socket
import subprocess
import time

from . import resp


class ProcessGroup:
    """Every process the benchmark starts; each runs in its own process group."""

    def __init__(self):
        """Creates an empty group and makes sure it is emptied at exit."""
        self.procs = []
        self.ports = set()
        atexit.register(self.stop_all)

    def start(self, argv, log_path, cwd=None):
        """Starts argv in a new session with stdout/stderr to log_path; returns the Popen."""
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd,
                                    start_new_session=True)
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def run(self, argv, timeout):
        """Runs argv to completion (killed after timeout s); returns (rc, stdout, stderr)."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            msg = err.decode(errors="replace") + f"\ntimed out after {timeout:.0f}s"
            return -1, out.decode(errors="replace"), msg
        finally:
            self.procs.remove(proc)

    def free_port(self):
        """Returns a free 127.0.0.1 TCP port (bind to port 0), never one handed out before."""
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in self.ports:
                self.ports.add(port)
                return port

    def stop_all(self):
        """Terminates every tracked process group (TERM, then KILL after 3 s)."""
        procs, self.procs = self.procs, []
        for proc in procs:
            signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in procs:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()


def signal_group(proc, sig):
    """Sends sig to proc's process group, ignoring groups that are already gone."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(proc):
    """SIGKILLs proc's process group."""
    signal_group(proc, signal.SIGKILL)


def install_signal_handlers():
    """Turns SIGTERM and SIGHUP into SystemExit so that cleanup code runs."""
    def handler(signum, _frame):
        """Raises SystemExit with the shell's 128+signal convention."""
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def log_tail(path, lines=15):
    """Returns the last lines of a log file, for error messages."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(proc, port, log_path, timeout=15.0, tls_ca=""):
    """Polls until 127.0.0.1:port answers PING with PONG (over TLS verified against the
    CA file tls_ca when given); raises if proc dies or time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering PING:\n"
                               + log_tail(log_path))
        try:
            reply = resp.command(port, "PING", timeout=0.5, tls_ca=tls_ca)
            if reply == "PONG":
                return
            last = repr(reply)
        except (OSError, resp.RespError) as e:
            last = str(e)
        time.sleep(0.02)
    raise RuntimeError(f"port {port} did not answer PING in {timeout:.0f}s ({last}):\n"
                       + log_tail(log_path))


def alive(pid):
    """True while process pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def cpu_seconds(pid):
    """Returns user+system CPU seconds of process pid (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def status_bytes(pid, field):
    """Returns a kB field of /proc/<pid>/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (clear_refs 5); returns False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
