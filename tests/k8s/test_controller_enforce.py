#!/usr/bin/env python3
"""tests/k8s/test_controller_enforce.py - orphaned Jobs (issue 13, part 1:
"when an allocation is cancelled, expires or is completed while its Job still
exists ... the controller reports the orphaned Job in /metrics; with --enforce
it deletes it") against a REAL kube-apiserver and Job controller
(tests/k8s/cluster.sh), a real Plinth daemon and the real binary (argv[1]).

1. A Job labelled with an approved allocation; the allocation is cancelled
   through Plinth's API while the Job lives. A controller WITHOUT --enforce
   (--check-interval 1, --metrics-listen) shows
   plinth_controller_orphaned_jobs{namespace="ml",job=...} 1 and
   plinth_controller_leader 1 on /metrics, and does not delete the Job; a Job
   whose allocation is still approved is not reported.
2. A controller WITH --enforce deletes the orphaned Job (the API server
   answers 404 for it), logs it and counts it
   (plinth_controller_enforced_deletions_total 1); the other Job stays.
3. A bad --metrics-listen is a usage error.
"""
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import ok, run, wait, free_port, _cleanups  # noqa: E402
from test_controller import (PLINTH, NS, ADMIN, api, Controller, allocate,  # noqa: E402
                             job_manifest, setup_world)


def metrics(port):
    """The controller's /metrics text, or "" when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def orphan_line(job):
    return f'plinth_controller_orphaned_jobs{{namespace="{NS}",job="{job}"}} 1'


def metrics_controller(tmp, kc, base, service, name, enforce=False):
    """A started controller checking every second, with /metrics on a free
    port (and --enforce if asked), stopped at the end: (controller, port)."""
    port = free_port()
    args = ("--check-interval", "1", "--metrics-listen", f"127.0.0.1:{port}")
    ctl = Controller(tmp, kc, base, service, name, args + (("--enforce",) if enforce else ()))
    _cleanups.append(ctl.stop)
    ctl.start()
    return ctl, port


def grant_delete(kube):
    """--enforce needs delete on jobs: a second role for the same user."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "plinth-controller-enforce"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["delete"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "plinth-controller-enforce"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "plinth-controller-enforce"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "plinth-controller"}]}
    st, b1 = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
    st2, b2 = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
    ok(st == 201 and st2 == 201, "RBAC: plinth-controller may delete jobs", (b1, b2))


def main():
    tmp, cluster, kube, base, service, kc = setup_world("plinth-ctl-enforce.")
    grant_delete(kube)

    def job_status(name):
        return kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")[0]

    a_orphan = allocate(base, "orphan-1")
    a_live = allocate(base, "live-1")
    for name, a in (("orphan-1", a_orphan), ("live-1", a_live)):
        st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                             job_manifest(name, a["id"]))
        ok(st == 201, f"Job {name} labelled {a['id']}", body)

    # 1. report only.
    ctl, port = metrics_controller(tmp, kc, base, service, "report")
    r = wait(lambda: (lambda t: ("plinth_controller_leader 1" in t, t))(metrics(port)), 60)
    ok(r[0], "/metrics answers: plinth_controller_leader 1", (r[1], ctl.log()[-1500:]))
    ok(orphan_line("orphan-1") not in r[1], "no orphan while the allocation is approved", r[1])

    st, body = api(base, ADMIN, "POST", f"/v1/allocations/{a_orphan['id']}/cancel")
    ok(st == 200 and body.get("status") == "cancelled", "cancel orphan-1's allocation in Plinth",
       body)
    r = wait(lambda: (lambda t: (orphan_line("orphan-1") in t, t))(metrics(port)), 60)
    ok(r[0], "the cancelled allocation's live Job is reported in /metrics",
       (r[1], ctl.log()[-1500:]))
    ok(orphan_line("live-1") not in r[1], "the approved allocation's Job is not reported", r[1])
    ok("plinth_controller_enforced_deletions_total 0" in r[1]
       and "plinth_controller_reports_total{verb=\"start\"} 0" in r[1]
       and "plinth_controller_report_failures_total 0" in r[1],
       "counters: no deletion, no report", r[1])
    time.sleep(3)  # three more check rounds: still only reported
    ok(job_status("orphan-1") == 200, "without --enforce the orphaned Job is not deleted",
       ctl.log()[-1500:])
    ok(ctl.stop() == 0, "the reporting controller stops on SIGTERM")

    # 2. enforce.
    enf, port2 = metrics_controller(tmp, kc, base, service, "enforce", enforce=True)
    r = wait(lambda: (lambda s: (s == 404, s))(job_status("orphan-1")), 60)
    ok(r[0], "with --enforce the controller deletes the orphaned Job (API server: 404)",
       (r[1], enf.log()[-1500:]))
    ok(f"deleted orphaned Job {NS}/orphan-1: allocation {a_orphan['id']} is cancelled" in enf.log(),
       "the deletion is logged", enf.log()[-1500:])
    r = wait(lambda: (lambda t: ("plinth_controller_enforced_deletions_total 1" in t, t))(
        metrics(port2)), 30)
    ok(r[0] and orphan_line("orphan-1") not in r[1],
       "plinth_controller_enforced_deletions_total 1, no orphan left", r[1])
    ok(job_status("live-1") == 200, "the approved allocation's Job is untouched", enf.log()[-1500:])
    st, a = api(base, ADMIN, "GET", f"/v1/allocations/{a_live['id']}")
    ok(a.get("status") == "approved", "its allocation is still approved", a)
    ok(enf.stop() == 0, "the enforcing controller stops on SIGTERM")

    # 3. usage errors.
    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":9000"):
        p = subprocess.run([PLINTH, "controller", "--kubeconfig", kc, "--metrics-listen", bad],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, PLINTH_URL=base, PLINTH_TOKEN=service))
        ok(p.returncode == 2 and "--metrics-listen" in p.stderr,
           f"--metrics-listen {bad!r} is a usage error", (p.returncode, p.stderr[-500:]))


if __name__ == "__main__":
    run(main)
