#!/usr/bin/env python3
"""tests/k8s/test_webhook_e2e.py - issue 13's scenarios 2, 1 and 4 through a
REAL kube-apiserver (tests/k8s/cluster.sh), a real Plinth daemon (its TLS
webhook listener; on SQLite, or on PostgreSQL with argv[2] "pg": a fresh
schema in PLINTH_TEST_PG_URL) and the real binary (argv[1]).

Scenario 2 (admission): the API server calls `plinth serve`'s TLS listener on
loopback (a throwaway CA and a 127.0.0.1 certificate made with openssl here)
through a ValidatingWebhookConfiguration, as a managed control plane (EKS,
GKE, AKS) does: with no admission configuration, so it sends no token and no
client certificate (the daemon's request log shows every review answered with
no actor). GPU pods without the label, of another team's
allocation, of a cancelled allocation, of the wrong GPU type, or asking for
more GPUs than the allocation holds are refused BY THE API SERVER (403) with
Plinth's reason; a pod without GPUs and a correctly labelled GPU pod are
admitted; a Job whose parallelism exceeds the count is refused.

Scenario 1 (submit to bill): POST /v1/jobs, the Job manifest read from the
daemon's GitOps bare repository (git show), applied as Argo CD would (YAML to
JSON with PyYAML), admitted by the webhook; `plinth controller` watches; the
test (as the kubelet) runs the pod for N s: approved -> running -> completed,
charged N s at the approval price, to the micro-unit.

Scenario 4 (outage): the controller reaches the API server through a TCP
relay the test closes; the API server is stopped and started again
(cluster.sh stop-apiserver/start-apiserver), and while the controller is cut
off the pod goes Running then Succeeded and etcd is compacted (its v3 JSON
API); when the relay opens, the controller's watch gets 410 Gone, it lists
again and completes the allocation with the pod's times.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import Cluster, ok, bail, run, wait, now, _cleanups, store_args, store_check  # noqa: E402
from plinthtest import Daemon  # noqa: E402
from test_controller import (Controller, api, charge, money_eq, parse_time, container,  # noqa: E402
                             kubeconfig_for, grant_controller, BACKEND)

PLINTH = sys.argv[1]
ROOT_DIR = os.path.dirname(os.path.dirname(HERE))
ADMIN = "plt_admin_k8s_webhook_e2e_0123456789"
LABEL = "plinth.io/allocation-id"
PRODUCT = "nvidia.com/gpu.product"
DENIED = 'admission webhook "gpu-allocations.plinth.io" denied the request: '
RUN_S = 3


def yaml_module():
    """PyYAML (tests/requirements.txt); without it, this script runs again
    under the repository's .venv (tools/venv.sh prints its python)."""
    try:
        import yaml
        return yaml
    except ImportError:
        pass
    if os.environ.get("PLINTH_E2E_REEXEC"):
        return None
    # Before any output: the TAP stream starts in the new process.
    r = subprocess.run([os.path.join(ROOT_DIR, "tools", "venv.sh")], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    os.environ["PLINTH_E2E_REEXEC"] = "1"
    python = r.stdout.strip()
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def make_ca_and_cert(tmp):
    """A throwaway CA and a serving certificate for 127.0.0.1 it signs."""
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=tmp)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "wh-ca.key",
        "-out", "wh-ca.crt", "-days", "2", "-subj", "/CN=plinth-webhook-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    with open(os.path.join(tmp, "wh.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1\n")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "wh.key", "-out", "wh.csr",
        "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", "wh.csr", "-CA", "wh-ca.crt", "-CAkey", "wh-ca.key",
        "-CAcreateserial", "-out", "wh.crt", "-days", "2", "-extfile", "wh.ext")
    return tuple(os.path.join(tmp, n) for n in ("wh-ca.crt", "wh.crt", "wh.key"))


class Relay:
    """A TCP relay on 127.0.0.1 to `port`; close() refuses new connections and
    cuts the open ones, open() lets them through again."""

    def __init__(self, port):
        self.port = port
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.local = self.srv.getsockname()[1]
        self.is_open = True
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not self.is_open:
                c.close()
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                b.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, b]
            threading.Thread(target=self.pipe, args=(c, b), daemon=True).start()
            threading.Thread(target=self.pipe, args=(b, c), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.is_open = False
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def open(self):
        self.is_open = True

    def stop(self):
        self.stopped = True
        self.close()
        self.srv.close()


def etcd(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    yaml = YAML
    tmp = tempfile.mkdtemp(prefix="plinth-wh-e2e.")
    _cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    if not ok(yaml is not None, "PyYAML is importable (tests/requirements.txt: run with .venv)"):
        bail("no PyYAML")

    # Plinth first; the API server gets no admission configuration: it calls
    # the webhook with no credentials, as a managed control plane does.
    ca, crt, key = make_ca_and_cert(tmp)
    env_mlflow = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        daemon = Daemon(PLINTH, ADMIN, tmp=tmp, args=(*store_args(BACKEND),
                                                      "--webhook-listen", "127.0.0.1:0",
                                                      "--tls-cert", crt, "--tls-key", key))
    except RuntimeError as e:
        bail(f"no Plinth daemon: {e}")
    if env_mlflow is not None:
        os.environ["MLFLOW_TRACKING_URI"] = env_mlflow
    _cleanups.append(daemon.stop)
    lines = daemon.base.split()
    base = lines[0]
    if not ok(len(lines) == 2 and lines[1].startswith("https://127.0.0.1:"),
              "plinth serve: HTTP API and the TLS webhook listener (second line of --ready-file)",
              lines):
        bail("no webhook listener")
    hook = lines[1].rstrip("/")
    for t, body in (("ml", "1000"), ("vision", "1000")):
        st, b = api(base, ADMIN, "PUT", f"/v1/teams/{t}",
                    {"display_name": t, "budget": {"amount": body, "period": "monthly"}})
        ok(st in (200, 201), f"Plinth: team {t}", b)
    store_check(BACKEND, "ml")
    for g, name, price in (("h100-80gb", "H100 80GB", "6.88"), ("a100-80gb", "A100 80GB", "3.40")):
        st, b = api(base, ADMIN, "PUT", f"/v1/gpu-types/{g}",
                    {"name": name, "price_per_gpu_hour": price, "capacity": 16})
        ok(st in (200, 201), f"Plinth: GPU type {g} at {price}", b)
    st2, tok2 = api(base, ADMIN, "POST", "/v1/tokens", {"name": "k8s-controller", "role": "service"})
    if not ok(st2 == 201, "Plinth: a service token for the controller (none for the API server)", tok2):
        bail("no token")

    cluster = Cluster()
    cluster.start()  # no PLINTH_K8S_ADMISSION_CONFIG: no webhook credentials
    kube = cluster.admin

    for ns in ("ml", "vision"):
        st, b = kube.call("POST", "/api/v1/namespaces",
                          {"metadata": {"name": ns, "labels": {"plinth.io/team": ns}}})
        ok(st == 201, f"namespace {ns} labelled plinth.io/team={ns}", b)
    st, b = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "scratch"}})
    ok(st == 201, "namespace scratch (no team label)", b)

    # The ValidatingWebhookConfiguration: deploy/kubernetes/validating-webhook.yaml
    # with a url instead of a Service, and our CA.
    with open(os.path.join(ROOT_DIR, "deploy", "kubernetes", "validating-webhook.yaml")) as f:
        vwc = yaml.safe_load(f)
    w = vwc["webhooks"][0]
    with open(ca, "rb") as f:
        w["clientConfig"] = {"url": hook + "/v1/admission/review",
                             "caBundle": base64.b64encode(f.read()).decode()}
    ok(w["failurePolicy"] == "Fail" and w["sideEffects"] == "None"
       and {r["resources"][0]: r["operations"] for r in w["rules"]} ==
       {"pods": ["CREATE"], "jobs": ["CREATE", "UPDATE"]},
       "the shipped example: failurePolicy Fail, sideEffects None, pods CREATE, jobs CREATE/UPDATE",
       w)
    st, b = kube.call("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", vwc)
    ok(st == 201, "ValidatingWebhookConfiguration registered (url to the loopback listener)", b)

    def allocate(team, gpu_type, count, project="p"):
        st, a = api(base, ADMIN, "POST", "/v1/allocations",
                    {"team": team, "project": project, "gpu_type": gpu_type, "gpu_count": count,
                     "max_runtime_hours": 1, "purpose": "webhook e2e", "labels": {}})
        if not ok(st == 201 and a.get("status") == "approved",
                  f"allocation {team}/{gpu_type} x{count} approved", a):
            bail("no allocation")
        return a

    def gpu_pod(name, alloc=None, gpus=1, gpu_type="h100-80gb"):
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "labels": {LABEL: alloc} if alloc else {}},
             "spec": {"restartPolicy": "Never",
                      "containers": [{"name": "t", "image": "registry.example/trainer:1.0"}]}}
        if gpus:
            p["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        if gpu_type:
            p["spec"]["nodeSelector"] = {"plinth.io/gpu-type": gpu_type}
        return p

    # The webhook must answer before the checks mean anything: the API
    # server reads the configuration from its informer a moment later.
    probe = gpu_pod("probe")
    r = wait(lambda: (lambda s, b: (s == 403 and DENIED in b.get("message", ""), (s, b)))(
        *kube.call("POST", "/api/v1/namespaces/ml/pods?dryRun=All", probe)), 60)
    if not ok(r[0], "the API server calls the webhook (a dry-run GPU pod without label is refused)", r[1]):
        bail("the webhook is not called: " + daemon.log_tail())

    a2 = allocate("ml", "h100-80gb", 2)
    av = allocate("vision", "h100-80gb", 1)
    ac = allocate("ml", "h100-80gb", 1)
    st, b = api(base, ADMIN, "POST", f"/v1/allocations/{ac['id']}/cancel")
    ok(st == 200 and b.get("status") == "cancelled", "an allocation cancelled", b)

    refused = [
        ("no label", gpu_pod("nolabel"),
         "the Pod asks for 1 nvidia.com/gpu but has no plinth.io/allocation-id label"),
        ("another team's allocation", gpu_pod("other", av["id"]),
         f"allocation {av['id']} belongs to team vision, not to namespace ml"),
        ("a cancelled allocation", gpu_pod("cancelled", ac["id"]),
         f"allocation {ac['id']} is cancelled: only an approved or running allocation"),
        ("the wrong GPU type", gpu_pod("wrongtype", a2["id"], gpu_type="a100-80gb"),
         f"the Pod selects GPU type a100-80gb but allocation {a2['id']} is for h100-80gb"),
        ("more GPUs than the allocation holds", gpu_pod("toomany", a2["id"], gpus=3),
         f"the Pod asks for 3 nvidia.com/gpu but allocation {a2['id']} holds 2"),
    ]
    for what, pod, reason in refused:
        st, b = kube.call("POST", "/api/v1/namespaces/ml/pods", pod)
        ok(st == 403 and b.get("kind") == "Status" and b.get("reason") == "Forbidden"
           and b.get("message", "").startswith(DENIED + reason),
           f"API server 403: GPU pod with {what}: '{reason}'", (st, b))
        st, b = kube.call("GET", f"/api/v1/namespaces/ml/pods/{pod['metadata']['name']}")
        ok(st == 404, f"... and the pod with {what} does not exist", st)

    st, b = kube.call("POST", "/api/v1/namespaces/ml/pods", gpu_pod("cpu-only", gpus=0, gpu_type=None))
    ok(st == 201, "API server 201: a pod without GPUs (no label) is admitted", (st, b))
    st, b = kube.call("POST", "/api/v1/namespaces/ml/pods", gpu_pod("good", a2["id"], gpus=2))
    ok(st == 201, "API server 201: a GPU pod labelled with an approved ml allocation of its type and size",
       (st, b))
    st, b = kube.call("POST", "/api/v1/namespaces/scratch/pods", gpu_pod("unlabelled-ns"))
    ok(st == 201, "a namespace without plinth.io/team is not sent to the webhook", (st, b))

    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "wide"},
           "spec": {"parallelism": 2, "completions": 2, "suspend": True,
                    "template": gpu_pod("x", a2["id"], gpus=2)}}
    job["spec"]["template"].pop("apiVersion")
    job["spec"]["template"].pop("kind")
    job["spec"]["template"]["metadata"].pop("name")
    st, b = kube.call("POST", "/apis/batch/v1/namespaces/ml/jobs", job)
    reason = (f"the Job asks for 4 nvidia.com/gpu (2 per pod x parallelism 2) but allocation "
              f"{a2['id']} holds 2")
    ok(st == 403 and b.get("message", "").startswith(DENIED + reason),
       f"API server 403: a Job with parallelism over the count: '{reason}'", (st, b))
    job["metadata"]["name"] = "narrow"
    job["spec"]["parallelism"] = 1
    st, b = kube.call("POST", "/apis/batch/v1/namespaces/ml/jobs", job)
    ok(st == 201, "API server 201: the same Job with parallelism 1", (st, b))
    st, b = kube.call("PATCH", "/apis/batch/v1/namespaces/ml/jobs/narrow", {"spec": {"parallelism": 2}},
                      "application/merge-patch+json")
    ok(st == 403 and reason in b.get("message", ""),
       "API server 403: raising its parallelism to 2 (UPDATE) is refused", (st, b))
    # Who asked: the daemon's request log has one line per review; the API
    # server's carry no token (actor null) and no client certificate.  (A
    # line is written just after its answer: read again for a moment.)
    def logged_reviews():
        found = []
        with open(daemon.log_path, "rb") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if isinstance(e, dict) and e.get("msg") == "request" \
                        and e.get("path") == "/v1/admission/review":
                    found.append(e)
        return len(found) >= 10, found
    reviews = wait(logged_reviews, 10)[1]
    ok(len(reviews) >= 10 and all(e.get("status") == 200 and e.get("actor") is None
                                  and "client_cert" not in e for e in reviews),
       f"the webhook listener answered the API server's {len(reviews)} reviews 200 with no token "
       "and no client certificate", reviews[-3:])
    for name in ("cpu-only", "good"):
        kube.call("DELETE", f"/api/v1/namespaces/ml/pods/{name}")
    kube.call("DELETE", "/apis/batch/v1/namespaces/ml/jobs/narrow")

    # The controller: least-privilege user, through a relay (scenario 4).
    grant_controller(kube)
    api_port = int(cluster.env["KUBE_URL"].rsplit(":", 1)[1])
    relay = Relay(api_port)
    _cleanups.append(relay.stop)
    kc = os.path.join(tmp, "controller.kubeconfig")
    kubeconfig_for(cluster, cluster.env["KUBE_CONTROLLER_TOKEN"], kc)
    with open(kc) as f:
        text = f.read()
    with open(kc, "w") as f:
        f.write(text.replace(cluster.env["KUBE_URL"], f"https://127.0.0.1:{relay.local}"))
    ctl = Controller(tmp, kc, base, tok2["token"])
    _cleanups.append(ctl.stop)
    ctl.start()

    def submit(name):
        st, j = api(base, ADMIN, "POST", "/v1/jobs",
                    {"team": "ml", "project": "llm", "name": name, "framework": "pytorch",
                     "gpu_type": "h100-80gb", "gpu_count": 1, "max_runtime_hours": 1})
        if not ok(st == 201 and j.get("allocation", {}).get("status") == "approved"
                  and j.get("mlflow", {}).get("skipped") is True,
                  f"POST /v1/jobs {name}: allocation approved, MLflow skipped", (st, j)):
            bail("no job")
        g = j["gitops"]
        show = subprocess.run(["git", "--git-dir", os.path.join(tmp, "data", "gitops.git"), "show",
                               f"{g['commit']}:{g['path']}/job.yaml"], capture_output=True, text=True)
        ok(show.returncode == 0, f"git show {g['commit'][:12]}:{g['path']}/job.yaml in DIR/gitops.git",
           show.stderr)
        manifest = yaml.safe_load(show.stdout)
        ok(manifest.get("kind") == "Job"
           and manifest["spec"]["template"]["metadata"]["labels"].get(LABEL) == j["allocation"]["id"],
           "the committed Job's pod template carries the allocation label", manifest)
        return j["allocation"], manifest

    def apply(manifest):
        ns = manifest["metadata"].get("namespace", "ml")
        st, b = kube.call("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", manifest)
        ok(st == 201, f"apply the committed Job {manifest['metadata']['name']} (as Argo CD would): "
           "admitted by the webhook", (st, b))

    def job_pod(name):
        r = wait(lambda: (lambda s, b: (s == 200 and len(b.get("items", [])) == 1, b))(
            *kube.call("GET", f"/api/v1/namespaces/ml/pods?labelSelector=job-name%3D{name}")), 120)
        if not ok(r[0], f"the Job controller created {name}'s pod (the webhook admitted it)", r[1]):
            bail("no pod")
        pod = r[1]["items"][0]["metadata"]["name"]
        st, b = kube.bind("ml", pod, "gpu-node-1")
        ok(st == 201, f"bind {pod} to gpu-node-1", b)
        return pod

    def running(pod):
        t0 = now()
        st, b = kube.patch_status("ml", pod, {"phase": "Running", "startTime": t0,
                                              "containerStatuses": container({"running": {"startedAt": t0}})})
        ok(st == 200, f"pods/status: {pod} Running at {t0}", b.get("status"))
        return t0

    def succeeded(pod, t0):
        t1 = now()
        st, b = kube.patch_status("ml", pod, {"phase": "Succeeded", "containerStatuses": container(
            {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t0, "finishedAt": t1}})})
        ok(st == 200, f"pods/status: {pod} Succeeded at {t1}", b.get("status"))
        return t1

    def alloc_status(aid, want, secs=90):
        return wait(lambda: (lambda r: (r[1].get("status") == want, r[1]))(
            api(base, ADMIN, "GET", f"/v1/allocations/{aid}")), secs)

    def audit(aid):
        st, body = api(base, ADMIN, "GET", "/v1/audit?team=ml&limit=500")
        acts = [e["action"] for e in body.get("items", []) if e.get("object_id") == aid]
        return acts.count("allocation.start"), acts.count("allocation.complete")

    def completed(a, t0, t1, what):
        r = alloc_status(a["id"], "completed")
        done = r[1]
        secs = parse_time(t1) - parse_time(t0)
        want = charge(1, a["price_per_gpu_hour"], secs)
        ok(r[0] and done.get("started_at") == t0 and done.get("ended_at") == t1,
           f"{what}: completed, started at the pod's startTime, ended at its finishedAt",
           (done, t0, t1, ctl.log()[-3000:]))
        ok(secs >= RUN_S and money_eq(done.get("actual_cost"), want),
           f"{what}: charged {secs} s x 1 GPU at the approval price {a['price_per_gpu_hour']} = {want}",
           (done.get("actual_cost"), want, secs))
        ok(audit(a["id"]) == (1, 1), f"{what}: one start, one completion", audit(a["id"]))

    # Scenario 1.
    a1, m1 = submit("train-e2e")
    st, _ = api(base, ADMIN, "PUT", "/v1/gpu-types/h100-80gb",
                {"name": "H100 80GB", "price_per_gpu_hour": "9.99", "capacity": 16})
    ok(st in (200, 201), "the GPU type's price rises after the approval (9.99)")
    apply(m1)
    pod1 = job_pod("train-e2e")
    t0 = running(pod1)
    r = alloc_status(a1["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "scenario 1: running from the pod's startTime",
       (r[1], ctl.log()[-2000:]))
    time.sleep(RUN_S)
    t1 = succeeded(pod1, t0)
    completed(a1, t0, t1, "scenario 1")

    # Scenario 4: the controller is cut off (relay closed) across an API
    # server restart, a pod's whole run and an etcd compaction.
    a4, m4 = submit("train-outage")
    apply(m4)
    pod4 = job_pod("train-outage")
    time.sleep(2)  # the controller's watch has seen the pod (Pending)
    relay.close()
    r = cluster.apiserver("stop")
    ok(r.returncode == 0, "cluster.sh stop-apiserver", r.stderr[-2000:])
    r = cluster.apiserver("start")
    ok(r.returncode == 0, "cluster.sh start-apiserver (same port and flags)", r.stderr[-2000:])
    t0 = running(pod4)
    time.sleep(RUN_S)
    t1 = succeeded(pod4, t0)
    rng = etcd(cluster.env["ETCD_URL"], "/v3/kv/range",
               {"key": base64.b64encode(b"/registry/").decode(), "limit": 1})
    rev = int(rng["header"]["revision"])
    comp = etcd(cluster.env["ETCD_URL"], "/v3/kv/compaction", {"revision": rev, "physical": True})
    ok("header" in comp, f"etcd compacted at revision {rev} (v3 JSON API)", comp)
    st, b = api(base, ADMIN, "GET", f"/v1/allocations/{a4['id']}")
    ok(b.get("status") == "approved", "cut off, the controller has seen nothing: still approved", b)
    relay.open()
    completed(a4, t0, t1, "scenario 4 (after the outage)")
    ok("410 Gone" in ctl.log() and "listing again" in ctl.log(),
       "the controller's watch expired (410 Gone) and it listed again", ctl.log()[-3000:])
    ok(ctl.stop() == 0, "the controller stops on SIGTERM with status 0", ctl.log()[-2000:])
    ok(daemon.stop() == 0, "the daemon stops on SIGTERM with status 0 (under ASan: no report)",
       daemon.log_tail(40))


YAML = yaml_module()  # before any output: it may run this script again
run(main)
