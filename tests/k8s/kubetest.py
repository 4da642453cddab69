"""tests/k8s/kubetest.py - what every test against the real control plane needs.

TAP output (ok/bail), a throwaway cluster (tools/k8s-build.sh then
tests/k8s/cluster.sh, see docs/kubernetes-testing.md), a small client of the
API server (standard library only: bearer token, TLS checked against the
cluster CA) and serving certificates signed by the cluster CA (for webhooks on
loopback). Shared by the 'k8s' suite's tests (the smoke test now, issue 13's
controller and webhook scenarios next).
"""
import datetime
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_SH = os.path.join(ROOT, "tests", "k8s", "cluster.sh")
BUILD_SH = os.path.join(ROOT, "tools", "k8s-build.sh")



def k8s_version():
    """The k8s.io/kubernetes version tools/k8s/go.mod builds (e.g. v1.37.2)."""
    with open(os.path.join(ROOT, "tools", "k8s", "go.mod")) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2 and w[0] == "k8s.io/kubernetes" and w[1].startswith("v"):
                return w[1]
    return None


_count = 0
_failed = 0
_cleanups = []  # run by bail() and finish(), newest first


def ok(cond, desc, info=""):
    """One TAP line; `info` (any value) is printed as a diagnostic on failure."""
    global _count, _failed
    _count += 1
    if cond:
        print(f"ok {_count} - {desc}")
    else:
        _failed += 1
        print(f"not ok {_count} - {desc}")
        for line in str(info).splitlines()[:40]:
            print(f"# {line[:600]}")
    sys.stdout.flush()
    return cond


def cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # a cleanup failing must not hide the others
            print(f"# cleanup failed: {e!r}")


def bail(msg):
    """Stops the run: TAP 'Bail out!', cleanups, exit status 1."""
    print(f"Bail out! {msg}")
    sys.stdout.flush()
    cleanups()
    sys.exit(1)


def finish():
    """Cleanups, the TAP plan, and the exit status (1 if any test failed)."""
    cleanups()
    print(f"1..{_count}")
    sys.exit(1 if _failed else 0)


def run(main):
    """The TAP run of a test: its header, main() (an unexpected exception is
    a failed test with its traceback), then finish()."""
    print("TAP version 13")
    sys.stdout.flush()
    try:
        main()
    except Exception:  # an unexpected error is a failed test, with its traceback
        ok(False, "the test ran to its end", traceback.format_exc())
    finish()


def store_args(backend):
    """The `plinth serve` arguments of a test's store: none for "sqlite" (its
    --data directory), `--database-url` of a fresh schema in
    PLINTH_TEST_PG_URL for "pg" (tools/pg-start.sh, exported by
    tools/run-tests.sh; dropped by a cleanup). Without that variable the pg
    variant fails, it never falls back to SQLite."""
    if backend == "sqlite":
        return []
    base = os.environ.get("PLINTH_TEST_PG_URL", "")
    if not ok(backend == "pg" and base, f"store {backend!r}: PLINTH_TEST_PG_URL is set",
              'run through tools/run-tests.sh or eval "$(tools/pg-start.sh)"; export PLINTH_TEST_PG_URL'):
        bail("no PostgreSQL")
    tag = "k8s_" + secrets.token_hex(6)
    p = subprocess.run(["psql", base, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE SCHEMA {tag}"],
                       capture_output=True, text=True)
    if not ok(p.returncode == 0, f"PostgreSQL: a fresh schema {tag} for the daemon", p.stderr):
        bail("no PostgreSQL schema")
    _cleanups.append(lambda: subprocess.run(["psql", base, "-qAtX", "-c", f"DROP SCHEMA {tag} CASCADE"],
                                            capture_output=True))
    _pg_schema["base"], _pg_schema["tag"] = base, tag
    sep = "&" if "?" in base else "?"
    return ["--database-url", f"{base}{sep}options=-csearch_path%3D{tag}"]


_pg_schema = {}  # the schema store_args made last (pg)


def store_check(backend, team):
    """For "pg": a TAP check that team `team` is a row of the schema
    store_args made, i.e. the daemon really writes to PostgreSQL there."""
    if backend != "pg":
        return
    p = subprocess.run(["psql", _pg_schema["base"], "-qAtX", "-c",
                        f"SELECT count(*) FROM {_pg_schema['tag']}.teams WHERE id = '{team}'"],
                       capture_output=True, text=True)
    ok(p.returncode == 0 and p.stdout.strip() == "1",
       f"the daemon's store is PostgreSQL: team {team} is a row of {_pg_schema['tag']}.teams",
       (p.stdout, p.stderr))


def backend_arg(argv, i=2):
    """The store a test runs on: argv[i] ("sqlite", the default, or "pg")."""
    b = argv[i] if len(argv) > i else "sqlite"
    if b not in ("sqlite", "pg"):
        bail(f"unknown store {b!r}: sqlite or pg")
    return b


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def now():
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait(fn, seconds=120):
    """Polls fn() 0.5 s apart until it returns (True, x); returns the last
    (ok, x) it got. Bounded by `seconds`."""
    deadline = time.monotonic() + seconds
    last = (False, None)
    while time.monotonic() < deadline:
        last = fn()
        if last[0]:
            break
        time.sleep(0.5)
    return last


class Kube:
    """A client of the API server: bearer token, TLS checked against the CA."""

    def __init__(self, url, token, ca):
        self.url = url
        self.token = token
        self.ctx = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None, ctype="application/json"):
        """Returns (HTTP status, decoded JSON body or {"raw": text})."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:  # /readyz, /healthz answer text
            return status, {"raw": raw.decode(errors="replace")}

    def patch_status(self, ns, pod, status):
        """Sets a pod's status as a kubelet would (pods/status, merge patch)."""
        return self.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/status",
                         {"status": status}, "application/merge-patch+json")

    def bind(self, ns, pod, node):
        """Assigns a pod to a node as the scheduler would (pods/binding)."""
        return self.call("POST", f"/api/v1/namespaces/{ns}/pods/{pod}/binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}})


class Cluster:
    """etcd + kube-apiserver + kube-controller-manager in a temporary directory.

    start() builds or finds the binaries (a failure is a failed test, never a
    skip) and starts the cluster; it registers its own stop() as a cleanup.
    After start(): env (DIR/env as a dict), admin (a Kube with the admin
    token), pki (the directory of ca.crt/ca.key)."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="plinth-k8s.")
        self.dir = os.path.join(self.tmp, "cluster")
        self.env = {}
        _cleanups.append(self.stop)

    def start(self, extra_env=None):
        """extra_env: more environment for cluster.sh start (e.g.
        PLINTH_K8S_ADMISSION_CONFIG)."""
        t0 = time.monotonic()
        b = subprocess.run([BUILD_SH], capture_output=True, text=True)
        bins = dict(l.split("=", 1) for l in b.stdout.split() if "=" in l)
        if not ok(b.returncode == 0 and "PLINTH_K8S_BIN" in bins and "PLINTH_ETCD_BIN" in bins,
                  f"tools/k8s-build.sh provides the binaries ({time.monotonic() - t0:.0f} s)",
                  b.stderr[-3000:]):
            bail("no Kubernetes binaries")
        env = dict(os.environ, **bins, **(extra_env or {}))
        self.bins = bins
        t0 = time.monotonic()
        c = subprocess.run([CLUSTER_SH, "start", self.dir], capture_output=True, text=True,
                           timeout=900, env=env)
        if not ok(c.returncode == 0, "cluster.sh start: etcd, kube-apiserver, kube-controller-manager"
                  f" ({time.monotonic() - t0:.0f} s)", c.stderr[-3000:]):
            bail("no cluster")
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line and not line.startswith("export"):
                    k, v = line.strip().split("=", 1)
                    self.env[k] = v
        self.pki = self.env["KUBE_PKI"]
        self.admin = self.client(self.env["KUBE_TOKEN"])

    def client(self, token):
        return Kube(self.env["KUBE_URL"], token, self.env["KUBE_CA"])

    def pids(self):
        """The process ids of the daemons (each leads its process group)."""
        with open(os.path.join(self.dir, "pids")) as f:
            return [int(l.split()[1]) for l in f if l.strip()]

    def apiserver(self, action):
        """cluster.sh stop-apiserver|start-apiserver: returns the CompletedProcess."""
        return subprocess.run([CLUSTER_SH, action + "-apiserver", self.dir], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, **self.bins))

    def stop(self):
        """Stops the daemons, removes the directory; returns cluster.sh's result."""
        r = None
        if os.path.isdir(self.dir):
            r = subprocess.run([CLUSTER_SH, "stop", self.dir], capture_output=True, text=True,
                               timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return r

    def serving_cert(self, name):
        """A serving certificate for 127.0.0.1/localhost signed by the cluster
        CA (the caBundle of a webhook on loopback); returns (cert, key) paths."""
        key, csr, crt, ext = (os.path.join(self.tmp, f"{name}.{x}") for x in ("key", "csr", "crt", "ext"))
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", csr, "-subj", f"/CN={name}"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(self.pki, "ca.crt"),
                        "-CAkey", os.path.join(self.pki, "ca.key"), "-CAcreateserial",
                        "-out", crt, "-days", "2", "-extfile", ext], check=True, capture_output=True)
        return crt, key

    def ca_pem(self):
        with open(os.path.join(self.pki, "ca.crt"), "rb") as f:
            return f.read()
