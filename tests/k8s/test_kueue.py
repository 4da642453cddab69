#!/usr/bin/env python3
"""tests/k8s/test_kueue.py - Plinth as Kueue's AdmissionCheck controller
(issue 17) with REAL Kueue (its manager built from sigs.k8s.io/kueue, its
CRDs from the module; test_kueue_harness.py) on the REAL API server and Job
controller of the k8s suite, a real Plinth daemon (SQLite) and the real
binary (argv[1]: `plinth controller --kueue`). The test plays the kubelet.

Team ml has a budget of 10 a month; H100 costs 6.88 per GPU hour; each Job
asks 1 GPU for at most 3600 s (kueue.x-k8s.io/max-exec-time-seconds), so one
fits and a second does not.

1. Before Plinth's controller runs, Job train-1's Workload waits (the check is
   not Active: the ClusterQueue is inactive) and the Job stays suspended.
2. With the controller: the AdmissionCheck becomes Active; the Workload's
   check becomes Ready with the allocation id in its message; Kueue admits
   it only then (Admitted after the check's transition, the allocation
   approved before), unsuspends the Job and its pod carries the
   plinth.io/allocation-id label; the allocation prices 1 x h100-80gb x 1 h.
3. Job train-2 (over budget): its check is Rejected, so Kueue deactivates
   the Workload (and resets the check to Pending, "Previously: Rejected");
   Plinth's detail stays in its annotation plinth.io/refusal; the Job stays
   suspended, no pod; the Workload is printed.
4. train-1's pod runs (startTime T0) and succeeds (finishedAt T1): Kueue marks
   the Workload Finished and the allocation is completed, started at T0 and
   ended at T1 (the cluster's times), charged T1 - T0 seconds.
5. No GPU free in Plinth (capacity 1, held): train-3's check goes Retry
   (requeueAfterSeconds 5), the annotation holds Plinth's capacity detail;
   once the GPU is free Kueue retries, the check is Ready (a new
   Idempotency-Key: Plinth replays refusals too) and the Workload admitted.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(os.path.dirname(HERE))


def _need_yaml():
    """PyYAML (tests/requirements.txt) reads the CRDs: without it, run again
    with the repository's .venv python (tools/venv.sh prints it)."""
    try:
        import yaml  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("PLINTH_KUEUE_REEXEC") is None:
        r = subprocess.run([os.path.join(ROOT_DIR, "tools", "venv.sh")], capture_output=True,
                           text=True)
        py = r.stdout.strip()
        if r.returncode == 0 and py:
            os.environ["PLINTH_KUEUE_REEXEC"] = "1"
            os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


_need_yaml()
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import ok, bail, run, wait, now, _cleanups  # noqa: E402
from test_controller import (PLINTH, ADMIN, api, Controller, container, parse_time,  # noqa: E402
                             charge, money_eq)
from test_kueue_harness import API, World, queues, kueue_job, workload_of, cond  # noqa: E402

NS = "ml"
LABEL = "plinth.io/allocation-id"


def check_state(w):
    for c in (w or {}).get("status", {}).get("admissionChecks", []) or []:
        if c["name"] == "plinth-budget":
            return c
    return {}


def main():
    import yaml
    world = World("plinth-kueue.", ADMIN, yaml, (NS,), budget="10")
    tmp, kube, base, service, kc, kq = (world.tmp, world.kube, world.base, world.service,
                                        world.kc, world.kueue)
    queues(kube, NS, "ml")

    def job(name):
        return kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")[1]

    # 1. No Plinth controller yet: the Workload waits, the Job stays suspended.
    st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", kueue_job("train-1", "ml"))
    ok(st == 201, "Job train-1 in LocalQueue ml (suspended, 1 GPU, 3600 s)", body)
    r = wait(lambda: (lambda w: (w is not None, w))(workload_of(kube, NS, "train-1")), 60)
    if not ok(r[0], "Kueue made a Workload for train-1", kq.tail()):
        bail("no Workload")
    wl_name = r[1]["metadata"]["name"]
    ok(r[1]["spec"].get("maximumExecutionTimeSeconds") == 3600 and r[1]["spec"]["queueName"] == "ml",
       "the Workload: queueName ml, maximumExecutionTimeSeconds 3600", r[1]["spec"])
    wait(lambda: (False, None), 5)  # five seconds in which Kueue could (wrongly) admit it
    w = workload_of(kube, NS, "train-1")
    ok(cond(w, "Admitted").get("status") != "True" and job("train-1")["spec"]["suspend"] is True,
       "without Plinth the Workload is not admitted and the Job stays suspended",
       w.get("status"))

    # 2. The controller: Active, Ready, then admitted.
    ctl = Controller(tmp, kc, base, service, "kueue-controller", ("--kueue",))
    _cleanups.append(ctl.stop)
    ctl.start()
    r = wait(lambda: (lambda s, b: (cond(b, "Active").get("status") == "True", b))(
        *kube.call("GET", f"{API}/admissionchecks/plinth-budget")), 60)
    ok(r[0], "the AdmissionCheck plinth-budget is Active (set by Plinth)",
       (r[1].get("status"), ctl.log()[-2000:]))

    def admitted():
        w = workload_of(kube, NS, "train-1")
        return cond(w, "Admitted").get("status") == "True", w
    r = wait(admitted, 120)
    w1 = r[1] or {}
    chk = check_state(w1)
    ok(r[0] and chk.get("state") == "Ready", "Kueue admits train-1 once Plinth's check is Ready",
       (w1.get("status"), ctl.log()[-2000:], kq.tail()))
    msg = chk.get("message", "")
    alloc_id = msg.split("plinth allocation ", 1)[-1].split(":", 1)[0] if "plinth allocation " in msg else ""
    st, a1 = api(base, ADMIN, "GET", f"/v1/allocations/{alloc_id}") if alloc_id else (0, {})
    ok(st == 200 and a1.get("status") == "approved" and a1.get("gpu_type") == "h100-80gb"
       and a1.get("gpu_count") == 1 and money_eq(a1.get("estimated_cost"), "6.88")
       and a1.get("team") == "ml" and a1.get("project") == NS,
       f"the check's message names allocation {alloc_id}: approved, 1 x h100-80gb for 1 h = 6.88",
       (msg, a1))
    ups = chk.get("podSetUpdates") or [{}]
    ok(all(u.get("labels", {}).get(LABEL) == alloc_id for u in ups),
       "the check's podSetUpdates label the pods plinth.io/allocation-id", ups)
    adm_at = parse_time(cond(w1, "Admitted").get("lastTransitionTime", "1970-01-01T00:00:00Z"))
    ok(parse_time(chk.get("lastTransitionTime", "2999-01-01T00:00:00Z")) <= adm_at
       and parse_time(a1.get("approved_at", "2999-01-01T00:00:00Z")) <= adm_at,
       "admitted after the allocation was approved and the check set Ready",
       (chk.get("lastTransitionTime"), a1.get("approved_at"), cond(w1, "Admitted")))
    r = wait(lambda: (lambda j: (j["spec"].get("suspend") is False, j["spec"].get("suspend")))(
        job("train-1")), 60)
    ok(r[0], "Kueue unsuspends Job train-1", r[1])

    # 3. Over budget: Rejected with Plinth's reason; stays suspended.
    st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", kueue_job("train-2", "ml"))
    ok(st == 201, "Job train-2 in LocalQueue ml (another 6.88 over a budget of 10)", body)

    # Kueue deactivates a Workload whose check is Rejected and resets the check
    # to Pending ("Previously: Rejected"); Plinth's reason stays in the
    # annotation plinth.io/refusal.
    def rejected():
        w = workload_of(kube, NS, "train-2")
        return (cond(w, "Evicted").get("reason") == "DeactivatedDueToAdmissionCheck"
                and "Rejected" in check_state(w).get("message", "")), w
    r = wait(rejected, 120)
    w2 = r[1] or {}
    ok(r[0] and w2["spec"].get("active") is False and cond(w2, "Admitted").get("status") != "True",
       "Kueue deactivates train-2: its plinth-budget check was Rejected", (w2, ctl.log()[-2000:]))
    refusal = (w2["metadata"].get("annotations") or {}).get("plinth.io/refusal", "")
    ok(refusal == "plinth: budget-exceeded: estimated cost 6.88 USD exceeds the 3.12 USD available",
       f"Plinth's reason is on the Workload (plinth.io/refusal): {refusal!r}", w2["metadata"])
    ok(f"workload {NS}/{w2['metadata']['name']}: Rejected (plinth: " in ctl.log(),
       "the controller logged the rejection with Plinth's detail", ctl.log()[-2000:])
    print("# train-2's Workload as Kueue shows it (annotations, spec.active, status):")
    shown = {"annotations": w2["metadata"].get("annotations"), "active": w2["spec"].get("active"),
             "status": w2.get("status")}
    for line in json.dumps(shown, indent=2, sort_keys=True).splitlines():
        print("#   " + line)
    wait(lambda: (False, None), 3)
    st, pods2 = kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dtrain-2")
    ok(job("train-2")["spec"]["suspend"] is True and not pods2.get("items"),
       "train-2 stays suspended, no pod", (job("train-2")["spec"], pods2.get("items")))
    st, team = api(base, ADMIN, "GET", "/v1/teams/ml")
    ok(money_eq(team.get("reserved"), "6.88"), "team ml reserves only train-1's 6.88", team)

    # 4. train-1 runs and finishes: completed at the cluster's times.
    r = wait(lambda: (lambda s, b: (len(b.get("items", [])) == 1, b))(
        *kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dtrain-1")), 120)
    if not ok(r[0], "the Job controller created train-1's pod", r[1]):
        bail("no pod")
    pod = r[1]["items"][0]
    ok(pod["metadata"].get("labels", {}).get(LABEL) == alloc_id,
       f"the pod carries {LABEL}={alloc_id} (Kueue applied the podSetUpdate)", pod["metadata"])
    name = pod["metadata"]["name"]
    st, body = kube.bind(NS, name, "gpu-node-1")
    ok(st == 201, f"bind {name} to gpu-node-1", body)
    t0 = now()
    st, body = kube.patch_status(NS, name, {"phase": "Running", "startTime": t0,
                                            "containerStatuses": container({"running": {"startedAt": t0}})})
    ok(st == 200, f"{name} Running, startTime {t0}", body.get("status"))
    r = wait(lambda: (lambda s, b: (b.get("status") == "running", b))(
        *api(base, ADMIN, "GET", f"/v1/allocations/{alloc_id}")), 90)
    ok(r[0] and r[1].get("started_at") == t0, f"the allocation is running since {t0}",
       (r[1], ctl.log()[-2000:]))
    wait(lambda: (False, None), 3)
    t1 = now()
    st, body = kube.patch_status(NS, name, {"phase": "Succeeded", "containerStatuses": container(
        {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t0, "finishedAt": t1}})})
    ok(st == 200, f"{name} Succeeded, finishedAt {t1}", body.get("status"))
    r = wait(lambda: (lambda w: (cond(w, "Finished").get("status") == "True", w))(
        workload_of(kube, NS, "train-1")), 120)
    ok(r[0], "Kueue marks train-1's Workload Finished", (r[1] or {}).get("status"))
    r = wait(lambda: (lambda s, b: (b.get("status") == "completed", b))(
        *api(base, ADMIN, "GET", f"/v1/allocations/{alloc_id}")), 90)
    done = r[1]
    secs = parse_time(t1) - parse_time(t0)
    ok(r[0] and done.get("started_at") == t0 and done.get("ended_at") == t1,
       f"the allocation is completed: started {t0}, ended {t1} (the pod's times)",
       (done, ctl.log()[-3000:]))
    ok(money_eq(done.get("actual_cost"), charge(1, a1["price_per_gpu_hour"], secs)),
       f"charged {secs} s x 1 GPU", (done.get("actual_cost"), secs))
    st, body = api(base, ADMIN, "GET", "/v1/audit?team=ml&limit=500")
    acts = [e["action"] for e in body.get("items", []) if e.get("object_id") == alloc_id]
    ok(acts.count("allocation.start") == 1 and acts.count("allocation.complete") == 1,
       "one start and one completion in the audit log (no double handling)", acts)
    # 5. No free GPU: Retry with a backoff, Plinth's reason kept; admitted
    # once a GPU is free (a new Idempotency-Key after Kueue's eviction).
    st, _ = api(base, ADMIN, "PUT", "/v1/gpu-types/h100-80gb",
                {"name": "H100 80GB", "price_per_gpu_hour": "6.88", "capacity": 1})
    st2, hold = api(base, ADMIN, "POST", "/v1/allocations",
                    {"team": "ml", "project": "hold", "gpu_type": "h100-80gb", "gpu_count": 1,
                     "max_runtime_hours": 0.01, "purpose": "holds the only GPU", "labels": {}})
    ok(st in (200, 201) and st2 == 201, "capacity 1, held by another allocation", hold)
    st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", kueue_job("train-3", "ml"))
    ok(st == 201, "Job train-3 in LocalQueue ml (within budget, no GPU free)", body)
    r = wait(lambda: (lambda w: ((w or {}).get("metadata", {}).get("annotations", {}).get(
        "plinth.io/refusal") == "plinth: capacity-exceeded: 1 GPUs requested, 0 free", w))(
        workload_of(kube, NS, "train-3")), 120)
    ok(r[0] and cond(r[1], "Admitted").get("status") != "True",
       "train-3's check went Retry with Plinth's capacity detail; not admitted",
       ((r[1] or {}).get("status"), ctl.log()[-1500:]))
    ok("workload ml/" in ctl.log() and ": Retry (plinth: capacity-exceeded" in ctl.log(),
       "the controller logged the Retry", ctl.log()[-1500:])
    st, body = api(base, ADMIN, "POST", f"/v1/allocations/{hold['id']}/cancel")
    ok(st == 200, "the holding allocation is cancelled: one GPU free", body)
    r = wait(lambda: (lambda w: (cond(w, "Admitted").get("status") == "True", w))(
        workload_of(kube, NS, "train-3")), 180)
    w3 = r[1] or {}
    ok(r[0] and check_state(w3).get("state") == "Ready"
       and "plinth.io/refusal" not in (w3["metadata"].get("annotations") or {}),
       "Kueue retries after the backoff: train-3 Ready and admitted, the refusal annotation gone",
       (w3.get("status"), w3.get("metadata"), ctl.log()[-2000:]))

    ok(ctl.stop() == 0, "the controller stops on SIGTERM", ctl.log()[-1500:])
    ok(kq.stop() in (0, -15), "Kueue's manager stops", kq.tail(800))
    print(f"# workload for reference: {wl_name}")


if __name__ == "__main__":
    run(main)
