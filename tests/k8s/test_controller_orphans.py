#!/usr/bin/env python3
"""tests/k8s/test_controller_orphans.py - the two orphan cases of issue 13
(part 1) that test_controller_enforce.py (a cancelled allocation) does not
cover, against a REAL kube-apiserver and Job controller (tests/k8s/cluster.sh),
a real Plinth daemon (SQLite or PostgreSQL, argv[2]) and the real binary
(argv[1]):

1. EXPIRED: a job submitted with POST /v1/jobs, its committed Job applied (as
   Argo CD would); its pod never runs, so the allocation expires (the daemon
   runs with --start-timeout 20 --sweep-interval 1) while the Job exists.
2. COMPLETED by a service caller (not the controller) while the Job's pod
   still runs: POST /v1/allocations/{id}/complete with another service token.

For each: the sweeper (expiry) or the completion takes the job's manifests
out of the GitOps repository in a commit ("plinth: remove ml/NAME: allocation
ID expired|completed"; the path is gone from the branch's tree); a controller
without --enforce reports the live Job as
plinth_controller_orphaned_jobs{namespace="ml",job=NAME} 1 on /metrics and
deletes nothing; a controller with --enforce deletes both Jobs (the API
server answers 404) and the ledger does not move (the completed allocation
keeps its charge, one completion in the audit log).
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import ok, bail, run, wait, now  # noqa: E402
from test_controller import NS, ADMIN, api, container, setup_world_daemon  # noqa: E402
from test_controller_enforce import metrics, orphan_line, grant_delete, metrics_controller  # noqa: E402

START_TIMEOUT = 20  # seconds an approved allocation may wait for its pod


def main():
    tmp, cluster, kube, daemon, service, kc = setup_world_daemon(
        "plinth-ctl-orphans.", ("--start-timeout", str(START_TIMEOUT), "--sweep-interval", "1"))
    base = daemon.base
    grant_delete(kube)
    gitdir = os.path.join(daemon.own_tmp.name, "data", "gitops.git")

    def git(*args):
        return subprocess.run(["git", "--git-dir", gitdir, *args], capture_output=True, text=True)

    def submit(name):
        """POST /v1/jobs, then the committed Job applied to the API server."""
        st, j = api(base, ADMIN, "POST", "/v1/jobs",
                    {"team": "ml", "project": "llm", "name": name, "framework": "pytorch",
                     "gpu_type": "h100-80gb", "gpu_count": 1, "max_runtime_hours": 1})
        if not ok(st == 201 and j.get("allocation", {}).get("status") == "approved",
                  f"POST /v1/jobs {name}: allocation approved, manifests committed", (st, j)):
            bail("no job")
        path = j["gitops"]["path"] + "/job.yaml"
        # The Job applied is built here with what the controller goes by
        # (name, namespace, the allocation label), so this test needs no
        # YAML parser; test_webhook_e2e.py applies the committed file itself.
        show = git("show", f"{j['gitops']['commit']}:{path}")
        ok(show.returncode == 0 and j["allocation"]["id"] in show.stdout,
           f"{path} is in the committed tree and names the allocation", show.stderr)
        alloc = j["allocation"]["id"]
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": NS, "labels": {"plinth.io/allocation-id": alloc}},
               "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 3600,
                        "template": {"metadata": {"labels": {"plinth.io/allocation-id": alloc}},
                                     "spec": {"restartPolicy": "Never", "containers": [
                                         {"name": "trainer", "image": "registry.example/trainer:1.0",
                                          "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}
        st, b = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", job)
        ok(st == 201, f"apply Job {name} (as Argo CD would)", b)
        return j["allocation"], path

    def removed(path, alloc_id, status):
        """The manifests left the branch in a commit that says why."""
        def check():
            gone = git("cat-file", "-e", f"HEAD:{path}").returncode != 0
            log = git("log", "--format=%s", "-n", "20").stdout
            return (gone and f"allocation {alloc_id} {status}" in log, log)
        return wait(check, 60)

    def job_status(name):
        return kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")[0]

    def alloc_get(aid):
        return api(base, ADMIN, "GET", f"/v1/allocations/{aid}")[1]

    ctl, port = metrics_controller(tmp, kc, base, service, "report")

    # 1. expires while its Job exists (the pod stays Pending).
    a_exp, p_exp = submit("orphan-expired")
    # 2. completed by a service caller while its Job's pod runs.
    a_done, p_done = submit("orphan-completed")
    r = wait(lambda: (lambda s, b: (s == 200 and len(b.get("items", [])) == 1, b))(
        *kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dorphan-completed")), 120)
    if not ok(r[0], "the Job controller created orphan-completed's pod", r[1]):
        bail("no pod")
    pod = r[1]["items"][0]["metadata"]["name"]
    kube.bind(NS, pod, "gpu-node-1")
    t0 = now()
    st, b = kube.patch_status(NS, pod, {"phase": "Running", "startTime": t0,
                                        "containerStatuses": container({"running": {"startedAt": t0}})})
    ok(st == 200, f"pods/status: {pod} Running at {t0}", b.get("status"))
    r = wait(lambda: (lambda a: (a.get("status") == "running", a))(alloc_get(a_done["id"])), 60)
    ok(r[0] and r[1].get("started_at") == t0, "the controller started orphan-completed's allocation",
       (r[1], ctl.log()[-1500:]))
    st, tok = api(base, ADMIN, "POST", "/v1/tokens", {"name": "billing-sync", "role": "service"})
    ok(st == 201, "another service token (a caller that is not the controller)", tok)
    time.sleep(1)
    st, done = api(base, tok["token"], "POST", f"/v1/allocations/{a_done['id']}/complete", {})
    ok(st == 200 and done.get("status") == "completed" and done.get("actual_cost") is not None,
       "the service caller completes the allocation while the pod runs", (st, done))
    r = removed(p_done, a_done["id"], "completed")
    ok(r[0], "completed: the job's manifests leave the GitOps repository in a commit", r[1])

    r = wait(lambda: (lambda a: (a.get("status") == "expired", a))(alloc_get(a_exp["id"])),
             START_TIMEOUT + 60)
    ok(r[0], f"orphan-expired's allocation expires ({START_TIMEOUT} s unstarted) while its Job exists",
       r[1])
    r = removed(p_exp, a_exp["id"], "expired")
    ok(r[0], "expired: the job's manifests leave the GitOps repository in a commit", r[1])

    r = wait(lambda: (lambda t: (orphan_line("orphan-expired") in t and orphan_line("orphan-completed") in t,
                                 t))(metrics(port)), 60)
    ok(r[0], "/metrics reports both live Jobs as orphaned (expired; completed while running)",
       (r[1], ctl.log()[-1500:]))
    ok("plinth_controller_enforced_deletions_total 0" in r[1], "the reporting controller deletes nothing",
       r[1])
    ok(job_status("orphan-expired") == 200 and job_status("orphan-completed") == 200,
       "without --enforce both Jobs still exist")
    ok(ctl.stop() == 0, "the reporting controller stops on SIGTERM")

    enf, port2 = metrics_controller(tmp, kc, base, service, "enforce", enforce=True)
    for name, a, why in (("orphan-expired", a_exp, "expired"), ("orphan-completed", a_done, "completed")):
        r = wait(lambda: (lambda s: (s == 404, s))(job_status(name)), 60)
        ok(r[0], f"--enforce deletes {name} (API server: 404)", (r[1], enf.log()[-1500:]))
        # The Job can be gone (404) a moment before the controller writes its
        # log line: wait for the line, bounded.
        line = f"deleted orphaned Job {NS}/{name}: allocation {a['id']} is {why}"
        r = wait(lambda: (line in enf.log(), None), 20)
        ok(r[0], f"the deletion of {name} is logged ({why})", enf.log()[-1500:])
    r = wait(lambda: (lambda t: ("plinth_controller_enforced_deletions_total 2" in t, t))(metrics(port2)), 30)
    ok(r[0], "plinth_controller_enforced_deletions_total 2", r[1])
    after = alloc_get(a_done["id"])
    st, audit = api(base, ADMIN, "GET", "/v1/audit?team=ml&limit=500")
    acts = [e["action"] for e in audit.get("items", []) if e.get("object_id") == a_done["id"]]
    ok(after.get("status") == "completed" and after.get("actual_cost") == done.get("actual_cost")
       and acts.count("allocation.complete") == 1,
       "the ledger does not move: the completed allocation keeps its charge, one completion",
       (after, done, acts))
    ok(alloc_get(a_exp["id"]).get("status") == "expired", "the expired allocation stays expired")
    ok(enf.stop() == 0, "the enforcing controller stops on SIGTERM")


if __name__ == "__main__":
    run(main)
