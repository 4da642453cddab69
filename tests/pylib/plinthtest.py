"""
tests/pylib/plinthtest.py - what the Python test harnesses share: a TAP
producer and the real daemon on a random loopback port.  Standard library
only, so every test venv (.venv, .venv-schemathesis) can import it; a
harness adds this directory to sys.path.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time


class Tap:
    """A minimal TAP producer that keeps going after failures."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {desc}")
        if not cond:
            self.failed += 1
            for line in str(diag or "").splitlines():
                print(f"#   {line}")
        sys.stdout.flush()
        return cond

    def note(self, text):
        for line in str(text).splitlines():
            print(f"# {line}")
        sys.stdout.flush()

    def done(self):
        """Prints the plan; the exit status: 1 on any failure or no test."""
        print(f"1..{self.n}")
        return 1 if self.failed or self.n == 0 else 0


class Daemon:
    """`plinth serve` on 127.0.0.1:0 with PLINTH_ADMIN_TOKEN=admin, its data
    directory and log in tmp (a fresh temporary directory, removed by
    cleanup(), when tmp is None); args are added to the command line.
    Raises RuntimeError when it is not ready within `wait` seconds."""

    def __init__(self, binary, admin, tmp=None, args=(), wait=30):
        self.own_tmp = None
        if tmp is None:
            self.own_tmp = tempfile.TemporaryDirectory(prefix="plinth-test-")
            tmp = self.own_tmp.name
        self.log_path = os.path.join(tmp, "daemon.log")
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, PLINTH_ADMIN_TOKEN=admin)
        env.pop("PLINTH_DATABASE_URL", None)
        ready = os.path.join(tmp, "ready")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(tmp, "data"),
             "--ready-file", ready, *args],
            stdout=self.log, stderr=self.log, env=env)
        self.base = None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(ready):
                with open(ready) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.base = text.strip()
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the daemon did not become ready:\n" + self.log_tail())

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM and wait (SIGKILL after 30 s); returns the exit status."""
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return rc

    def cleanup(self):
        if self.own_tmp is not None:
            self.own_tmp.cleanup()
