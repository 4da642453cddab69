#!/usr/bin/env python3
"""tests/k8s/test_controller.py - `plinth controller` against a REAL
kube-apiserver and Job controller (tests/k8s/cluster.sh), a real Plinth daemon
(SQLite or PostgreSQL, argv[2]) and the real binary (argv[1]). The test acts
as the kubelet through pods/status. Scenarios (issue 13, part 1):

1. an allocation and a Job labelled with its id: pod Running at T0, Succeeded
   N s later (finishedAt T1); the Job controller marks the Job Complete; the
   allocation goes approved -> running -> completed, started at T0, ended at T1
   (not at the Complete condition, written a moment later), charged T1 - T0
   seconds at the APPROVAL price (the GPU type's price is raised after
   approval), to the micro-unit;
2. kill -9 of the controller between the pod's start and the Job's end, then a
   restart: one start and one completion in the audit log, the same charge;
   a third life after completion changes nothing;
   a Job created suspended (as Kueue does) is billed from its pod's start, not
   from its creation; bare pods (no Job) end when the last one stops; a Job
   deleted while its pod runs ends at its deletion;
3. two replicas electing a leader with a coordination.k8s.io/v1 Lease: one
   leader, one start and one completion; kill -9 the leader while a pod runs:
   the other replica takes the lease over and completes the allocation, once.

argv[2] is the store the daemon runs on: "sqlite" (default) or "pg" (a fresh
schema in PLINTH_TEST_PG_URL; tests/meson.build runs both, as k8s-controller
and k8s-controller-pg).

The controller watches with a least-privilege user (get/list/watch on jobs
and pods, leases) through a kubeconfig with certificate-authority-data and a
token; the replicas of scenario 3 authenticate with a client certificate
(client-certificate-data/client-key-data) signed by the cluster's CA.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal, ROUND_HALF_UP

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import (Cluster, ok, bail, run, wait, now, _cleanups, store_args,  # noqa: E402
                      backend_arg, store_check)
from plinthtest import Daemon  # noqa: E402

PLINTH = sys.argv[1]
BACKEND = backend_arg(sys.argv)  # sqlite | pg, for every test that imports this module
NS = "ml"
ALLOC_LABEL = "plinth.io/allocation-id"
ADMIN = "plt_admin_k8s_controller_test_0123456789"
RUN_S = 3  # N: how long the pod runs


def api(base, token, method, path, body=None):
    """Plinth's API: (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


def parse_time(s):
    return int(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))) - time.timezone


def charge(gpus, price, seconds):
    """cost.h: round_half_up(gpu_count * price * duration / 1 h), micro-units."""
    micros = Decimal(gpus) * Decimal(price) * Decimal(seconds) / Decimal(3600)
    return str(micros.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize()) \
        if micros else "0"


def money_eq(a, b):
    return a is not None and Decimal(a) == Decimal(b)


class Controller:
    """`plinth controller` as a child process with its log in a file."""

    def __init__(self, tmp, kubeconfig, base, token, name="controller", extra=()):
        self.args = [PLINTH, "controller", "--kubeconfig", kubeconfig, "--watch-timeout", "30",
                     *extra]
        self.env = dict(os.environ, PLINTH_URL=base, PLINTH_TOKEN=token)
        self.log_path = os.path.join(tmp, name + ".log")
        self.proc = None
        self.lives = 0

    def start(self):
        self.lives += 1
        log = open(self.log_path, "ab")
        log.write(f"--- life {self.lives}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, env=self.env)
        log.close()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def client_cert(cluster, tmp, user):
    """A client certificate for `user` signed by the cluster CA (the API
    server's --client-ca-file): returns (cert PEM, key PEM) as base64."""
    key, csr, crt, ext = (os.path.join(tmp, f"{user}.{x}") for x in ("key", "csr", "crt", "ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", f"/CN={user}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(cluster.pki, "ca.crt"),
                    "-CAkey", os.path.join(cluster.pki, "ca.key"), "-CAcreateserial", "-out", crt,
                    "-days", "2", "-extfile", ext], check=True, capture_output=True)
    with open(crt, "rb") as c, open(key, "rb") as k:
        return base64.b64encode(c.read()).decode(), base64.b64encode(k.read()).decode()


def kubeconfig_for(cluster, token, path, cert=None):
    with open(cluster.env["KUBE_CA"], "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    user = f"    token: {token}\n" if cert is None else \
        f"    client-certificate-data: {cert[0]}\n    client-key-data: {cert[1]}\n"
    # libyaml reads JSON too, but write real YAML, as kubectl does.
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {cluster.env["KUBE_URL"]}
    certificate-authority-data: {ca}
users:
- name: plinth-controller
  user:
{user}contexts:
- name: plinth
  context:
    cluster: test
    user: plinth-controller
current-context: plinth
""")


def job_manifest(name, alloc):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {ALLOC_LABEL: alloc}},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 3600,
                     "template": {"metadata": {"labels": {ALLOC_LABEL: alloc}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "trainer",
                                                           "image": "registry.example/trainer:1.0",
                                                           "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def container(state):
    return [{"name": "trainer", "image": "registry.example/trainer:1.0", "imageID": "",
             "ready": "running" in state, "started": "running" in state, "restartCount": 0,
             "state": state}]


def grant_controller(kube):
    """RBAC: user plinth-controller may get/list/watch jobs and pods, and
    get/create/update leases (a ClusterRole and its binding)."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "plinth-controller"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                       "verbs": ["get", "create", "update"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "plinth-controller"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "plinth-controller"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "plinth-controller"}]}
    st, body = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    st2, body2 = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
    ok(st == 201 and st2 == 201, "RBAC: plinth-controller may get/list/watch jobs and pods, "
       "get/create/update leases",
       (body, body2))


def plinth_setup(admin, budget="1000", capacity=16, daemon_args=()):
    """A Plinth daemon (on BACKEND's store, a cleanup registered; daemon_args
    added to `plinth serve`) with team ml (`budget` a month), GPU type
    h100-80gb at 6.88 (`capacity`) and a service token for the controller:
    returns (daemon, token)."""
    try:
        daemon = Daemon(PLINTH, admin, args=[*store_args(BACKEND), *daemon_args])
    except RuntimeError as e:
        bail(f"no Plinth daemon: {e}")
    _cleanups.append(daemon.cleanup)
    _cleanups.append(daemon.stop)
    base = daemon.base
    st, _ = api(base, admin, "PUT", "/v1/teams/ml",
                {"display_name": "ML", "budget": {"amount": budget, "period": "monthly"}})
    st2, _ = api(base, admin, "PUT", "/v1/gpu-types/h100-80gb",
                 {"name": "H100 80GB", "price_per_gpu_hour": "6.88", "capacity": capacity})
    st3, tok = api(base, admin, "POST", "/v1/tokens", {"name": "k8s-controller", "role": "service"})
    if not ok(st in (200, 201) and st2 in (200, 201) and st3 == 201 and "token" in tok,
              "Plinth: team ml, GPU type h100-80gb at 6.88, a service token", (st, st2, st3, tok)):
        bail("no Plinth setup")
    store_check(BACKEND, "ml")
    return daemon, tok["token"]


def setup_world(prefix):
    """A temporary directory, the cluster, Plinth (plinth_setup), namespace ml
    and the controller's RBAC and kubeconfig (all cleaned up at the end):
    returns (tmp, cluster, kube, base, service token, kubeconfig path)."""
    tmp, cluster, kube, daemon, service, kc = setup_world_daemon(prefix)
    return tmp, cluster, kube, daemon.base, service, kc


def setup_world_daemon(prefix, daemon_args=()):
    """setup_world() with daemon_args for `plinth serve`; returns the Daemon
    itself (its data directory holds the GitOps repository) instead of its
    base URL."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    _cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    cluster = Cluster()
    cluster.start()
    kube = cluster.admin

    # Plinth: a team, a GPU type, a service token for the controller.
    daemon, service = plinth_setup(ADMIN, daemon_args=daemon_args)

    # Kubernetes: the namespace, and a user that may only read Jobs and Pods.
    st, body = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    ok(st == 201, "namespace ml", body)
    grant_controller(kube)
    kc = os.path.join(tmp, "kubeconfig")
    kubeconfig_for(cluster, cluster.env["KUBE_CONTROLLER_TOKEN"], kc)
    return tmp, cluster, kube, daemon, service, kc


def create_bare_pod(kube, ns, name, alloc_id):
    """A pod with no Job, labelled alloc_id, bound to gpu-node-1 and asking 1 GPU."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {ALLOC_LABEL: alloc_id}},
           "spec": {"restartPolicy": "Never", "nodeName": "gpu-node-1",
                    "containers": [{"name": "trainer", "image": "registry.example/trainer:1.0",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    st, body = kube.call("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    ok(st == 201, f"bare pod {ns}/{name} labelled {alloc_id}", body)


def allocate(base, project):
    """An approved allocation of 1 h100-80gb for team ml (bails otherwise)."""
    st, a = api(base, ADMIN, "POST", "/v1/allocations",
                {"team": "ml", "project": project, "gpu_type": "h100-80gb", "gpu_count": 1,
                 "max_runtime_hours": 1, "purpose": "k8s controller test", "labels": {}})
    if not ok(st == 201 and a.get("status") == "approved", f"allocation for {project} approved", a):
        bail("no allocation")
    return a


def main():
    tmp, cluster, kube, base, service, kc = setup_world("plinth-ctl-test.")

    ctl = Controller(tmp, kc, base, service)
    _cleanups.append(ctl.stop)
    ctl.start()

    def alloc_status(aid, want):
        return wait(lambda: (lambda r: (r[1].get("status") == want, r[1]))(
            api(base, ADMIN, "GET", f"/v1/allocations/{aid}")), 90)

    def run_pod(job, alloc, create=True):
        if create:
            st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", job_manifest(job, alloc))
            ok(st == 201, f"Job {job} labelled {alloc}", body)
        r = wait(lambda: (lambda s, b: (s == 200 and len(b.get("items", [])) == 1, b))(
            *kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3D{job}")), 120)
        if not ok(r[0], f"the Job controller created {job}'s pod", r[1]):
            bail("no pod")
        pod = r[1]["items"][0]["metadata"]["name"]
        st, body = kube.bind(NS, pod, "gpu-node-1")
        ok(st == 201, f"bind {pod} to gpu-node-1", body)
        t0 = now()
        st, body = kube.patch_status(NS, pod, {"phase": "Running", "startTime": t0,
                                               "containerStatuses": container({"running": {"startedAt": t0}})})
        ok(st == 200, f"pods/status: {pod} Running, startTime {t0}", body.get("status"))
        return pod, t0

    def finish_pod(job, pod, t0):
        t1 = now()
        st, body = kube.patch_status(NS, pod, {"phase": "Succeeded", "containerStatuses": container(
            {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t0, "finishedAt": t1}})})
        ok(st == 200, f"pods/status: {pod} Succeeded, finishedAt {t1}", body.get("status"))

        def complete():
            st, j = kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/{job}")
            conds = {c["type"]: c for c in (j.get("status", {}).get("conditions") or [])}
            return (conds.get("Complete", {}).get("status") == "True", conds.get("Complete"))
        r = wait(complete, 120)
        ok(r[0] and r[1]["lastTransitionTime"] >= t1, f"the real Job controller marks {job} Complete",
           r[1])
        return t1 if r[0] else None

    def audit_count(aid):
        st, body = api(base, ADMIN, "GET", "/v1/audit?team=ml&limit=500")
        acts = [e["action"] for e in body.get("items", []) if e.get("object_id") == aid]
        return acts.count("allocation.start"), acts.count("allocation.complete")

    def check_completed(a, t0, end, what, min_secs=RUN_S):
        r = alloc_status(a["id"], "completed")
        done = r[1]
        secs = parse_time(end) - parse_time(t0) if end else -1
        want = charge(1, a["price_per_gpu_hour"], secs)
        ok(r[0] and done.get("started_at") == t0 and done.get("ended_at") == end,
           f"{what}: completed, started at the pod's startTime, ended at its finishedAt",
           (done, t0, end, ctl.log()[-3000:]))
        ok(secs >= min_secs and money_eq(done.get("actual_cost"), want),
           f"{what}: charged {secs} s x 1 GPU at the approval price {a['price_per_gpu_hour']}"
           f" = {want}, to the micro-unit", (done.get("actual_cost"), want, secs))
        ok(audit_count(a["id"]) == (1, 1), f"{what}: one start and one completion in the audit log",
           audit_count(a["id"]))
        return done

    # 1. approved -> running -> completed, at the approval price.
    a1 = allocate(base, "train-1")
    st, _ = api(base, ADMIN, "PUT", "/v1/gpu-types/h100-80gb",
                {"name": "H100 80GB", "price_per_gpu_hour": "9.99", "capacity": 16})
    ok(st in (200, 201), "the GPU type's price changes after the approval (9.99)")
    pod1, t0 = run_pod("train-1", a1["id"])
    r = alloc_status(a1["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "the controller started the allocation at the pod's startTime",
       (r[1], ctl.log()[-3000:]))
    time.sleep(RUN_S)
    end1 = finish_pod("train-1", pod1, t0)
    check_completed(a1, t0, end1, "scenario 1")

    # 2. kill -9 between the pod's start and the Job's end, then restart.
    a2 = allocate(base, "train-2")
    pod2, t0 = run_pod("train-2", a2["id"])
    r = alloc_status(a2["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "scenario 2: started at the pod's startTime", r[1])
    ok(ctl.kill9() == -signal.SIGKILL, "kill -9 the controller while the pod runs")
    time.sleep(RUN_S)
    end2 = finish_pod("train-2", pod2, t0)
    st, b = api(base, ADMIN, "GET", f"/v1/allocations/{a2['id']}")
    ok(b.get("status") == "running", "with no controller the allocation is still running", b)
    ctl.start()
    done2 = check_completed(a2, t0, end2, "scenario 2 (restarted controller)")

    # A Job created suspended: billed from its pod's start, not its creation.
    a5 = allocate(base, "train-susp")
    job = job_manifest("train-susp", a5["id"])
    job["spec"]["suspend"] = True
    st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", job)
    ok(st == 201, "Job train-susp created suspended", body)
    time.sleep(3)
    st, pods = kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dtrain-susp")
    st2, b = api(base, ADMIN, "GET", f"/v1/allocations/{a5['id']}")
    ok(st == 200 and not pods.get("items") and b.get("status") == "approved",
       "suspended: no pod, the allocation stays approved", (pods.get("items"), b))
    st, body = kube.call("PATCH", f"/apis/batch/v1/namespaces/{NS}/jobs/train-susp",
                         {"spec": {"suspend": False}}, "application/merge-patch+json")
    ok(st == 200, "resume the Job (spec.suspend=false)", body)
    created = parse_time(body.get("metadata", {}).get("creationTimestamp", "1970-01-01T00:00:00Z"))
    pod5, t0 = run_pod("train-susp", a5["id"], create=False)
    r = alloc_status(a5["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0 and parse_time(t0) >= created + 3,
       "the resumed Job is billed from its pod's start, at least 3 s after its creation",
       (r[1], t0, created))
    time.sleep(1)
    end5 = finish_pod("train-susp", pod5, t0)
    check_completed(a5, t0, end5, "suspended then resumed", 1)

    # Bare pods: no Job; over when the last pod stops.
    a6 = allocate(base, "bare")
    bare = [f"bare-{i}" for i in (1, 2)]
    for name in bare:
        create_bare_pod(kube, NS, name, a6["id"])
    t0 = now()
    for name in bare:
        kube.patch_status(NS, name, {"phase": "Running", "startTime": t0,
                                     "containerStatuses": container({"running": {"startedAt": t0}})})
    r = alloc_status(a6["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "bare pods: started at their startTime", r[1])
    time.sleep(1)
    t1 = now()
    kube.patch_status(NS, bare[0], {"phase": "Succeeded", "containerStatuses": container(
        {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t0, "finishedAt": t1}})})
    time.sleep(2)
    st, b = api(base, ADMIN, "GET", f"/v1/allocations/{a6['id']}")
    ok(b.get("status") == "running", "bare pods: still running while one pod runs", b)
    t2 = now()
    kube.patch_status(NS, bare[1], {"phase": "Failed", "containerStatuses": container(
        {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t0, "finishedAt": t2}})})
    check_completed(a6, t0, t2, "bare pods (ended by the last one)", 2)

    # A pod in a namespace that is not its allocation's team's (the webhook
    # would refuse it; here none runs) is never counted: it neither starts
    # the allocation nor keeps it running.
    st, body = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "other-team"}})
    ok(st == 201, "namespace other-team", body)
    a8 = allocate(base, "foreign")

    def bare_pod(ns, name):
        create_bare_pod(kube, ns, name, a8["id"])
        t = now()
        kube.patch_status(ns, name, {"phase": "Running", "startTime": t,
                                     "containerStatuses": container({"running": {"startedAt": t}})})
        return t
    bare_pod("other-team", "intruder")
    time.sleep(3)
    st, b = api(base, ADMIN, "GET", f"/v1/allocations/{a8['id']}")
    ok(b.get("status") == "approved", "a pod in another team's namespace does not start it", b)
    time.sleep(1)
    t0 = bare_pod(NS, "own")
    r = alloc_status(a8["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "the team's own pod starts it, at its startTime", r[1])
    time.sleep(1)
    t1 = now()
    kube.patch_status(NS, "own", {"phase": "Succeeded", "containerStatuses": container(
        {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t0, "finishedAt": t1}})})
    check_completed(a8, t0, t1, "the team's pod ended it; the intruder still running is not counted", 1)
    ok("namespace 'other-team' carries it, but the team's namespaces are ml: not counted" in ctl.log(),
       "the controller logs the workload it does not count", ctl.log()[-2000:])

    # A Job deleted while its pod runs: ended at the deletion.
    a7 = allocate(base, "train-del")
    pod7, t0 = run_pod("train-del", a7["id"])
    r = alloc_status(a7["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "train-del: started at the pod's startTime", r[1])
    time.sleep(2)
    t_del = parse_time(now())
    st, body = kube.call("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/train-del",
                         {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    ok(st == 200, "delete the Job while its pod runs", body)
    r = alloc_status(a7["id"], "completed")
    done = r[1]
    end = parse_time(done["ended_at"]) if done.get("ended_at") else 0
    secs = end - parse_time(t0)
    ok(r[0] and t_del <= end <= t_del + 30, "a deleted Job ends its allocation at the deletion (as seen)",
       (done, t_del, ctl.log()[-1500:]))
    ok(money_eq(done.get("actual_cost"), charge(1, a7["price_per_gpu_hour"], secs))
       and audit_count(a7["id"]) == (1, 1), f"train-del: charged its {secs} s, once",
       (done.get("actual_cost"), secs, audit_count(a7["id"])))

    # A third life after everything is reported changes nothing.
    st, team_before = api(base, ADMIN, "GET", "/v1/teams/ml")
    ok(ctl.stop() == 0, "the controller stops on SIGTERM with status 0", ctl.log()[-2000:])
    ctl.start()
    time.sleep(5)  # lets it list both kinds and reconcile
    ok(ctl.proc.poll() is None, "a third life lists again and keeps running", ctl.log()[-2000:])
    st, team_after = api(base, ADMIN, "GET", "/v1/teams/ml")
    ok(all(audit_count(a["id"]) == (1, 1) for a in (a1, a2, a5, a6, a7))
       and all(team_before.get(k) == team_after.get(k) for k in ("spent", "reserved", "accrued")),
       "re-deriving everything after a restart charges nothing twice",
       ([audit_count(a["id"]) for a in (a1, a2, a5, a6, a7)], team_before, team_after))
    st, a1now = api(base, ADMIN, "GET", f"/v1/allocations/{a1['id']}")
    ok(a1now.get("actual_cost") is not None and done2.get("actual_cost") is not None,
       "both allocations keep their charge", (a1now, done2))
    ok(ctl.stop() == 0, "the controller stops on SIGTERM")

    # 3. two replicas, one leader; the leader dies, the other takes over.
    st, body = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "plinth-system"}})
    ok(st == 201, "namespace plinth-system (the lease)", body)
    lease_args = ("--lease-namespace", "plinth-system", "--lease-duration", "5")
    kc_cert = os.path.join(tmp, "kubeconfig-cert")
    kubeconfig_for(cluster, None, kc_cert, client_cert(cluster, tmp, "plinth-controller"))
    reps = [Controller(tmp, kc_cert, base, service, f"replica-{i}", lease_args) for i in (1, 2)]
    for r in reps:
        _cleanups.append(r.stop)
        r.start()

    def holder():
        st, l = kube.call("GET", "/apis/coordination.k8s.io/v1/namespaces/plinth-system/leases/plinth-controller")
        h = l.get("spec", {}).get("holderIdentity", "") if st == 200 else ""
        pids = {str(r.proc.pid): r for r in reps}
        who = pids.get(h.rsplit("_", 1)[-1]) if h else None
        return (who is not None, who)
    r = wait(holder, 60)
    if not ok(r[0], "one replica holds the lease (holderIdentity HOSTNAME_PID)", r):
        bail("no leader")
    leader = r[1]
    follower = reps[1] if leader is reps[0] else reps[0]
    a3 = allocate(base, "train-3")
    pod3, t0 = run_pod("train-3", a3["id"])
    r = alloc_status(a3["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "scenario 3: the leader started it at the pod's startTime",
       (r[1], leader.log()[-2000:]))
    time.sleep(1)
    end3 = finish_pod("train-3", pod3, t0)
    check_completed(a3, t0, end3, "scenario 3 (two replicas)", 1)
    ok("leader: holding" in leader.log() and "leader: holding" not in follower.log()
       and "allocation " not in follower.log(),
       "only the leader reported; the follower only watched", (leader.log()[-1500:], follower.log()[-1500:]))

    a4 = allocate(base, "train-4")
    pod4, t0 = run_pod("train-4", a4["id"])
    r = alloc_status(a4["id"], "running")
    ok(r[0] and r[1].get("started_at") == t0, "scenario 3: the leader started train-4", r[1])
    ok(leader.kill9() == -signal.SIGKILL, "kill -9 the leader while the pod runs")
    time.sleep(1)
    end4 = finish_pod("train-4", pod4, t0)
    r = wait(lambda: (lambda h: (h[1] is follower, h[1]))(holder()), 60)
    ok(r[0], "the other replica takes the lease over (after 5 s unrenewed)", r)
    check_completed(a4, t0, end4, "scenario 3 (after the takeover)", 1)
    ok("leader: holding" in follower.log(), "the new leader says so in its log", follower.log()[-1500:])
    ok(follower.stop() == 0, "the new leader stops on SIGTERM")
    st, l = kube.call("GET", "/apis/coordination.k8s.io/v1/namespaces/plinth-system/leases/plinth-controller")
    ok(st == 200 and not l.get("spec", {}).get("holderIdentity"),
       "stopping releases the lease (holderIdentity emptied)", l.get("spec"))


if __name__ == "__main__":  # test_webhook_e2e.py imports the helpers above
    run(main)
