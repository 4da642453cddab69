#!/usr/bin/env python3
"""tests/k8s/bench_kueue.py - `make bench` (bench/run.sh; BENCH_K8S=0 or
BENCH_KUEUE=0 skips it): Workloads admitted per second by real Kueue through
Plinth's budget check (`plinth controller --kueue`), beside the same queue
without the check, in one run on one cluster.

Real control plane (cluster.sh), real Kueue (test_kueue_harness.py), real
Plinth daemon (SQLite) and binary (argv[1]). For each of two ClusterQueues
(same quota, one with the plinth-budget AdmissionCheck, one without) N
Workloads (1 GPU, 3600 s; created directly, so no pods are made) are queued
while the ClusterQueue is held (stopPolicy Hold); the hold is lifted and the
clock runs until all N are Admitted (a list every 0.5 s). Prints RESULT lines
and a summary. A benchmark: it fails only when something does not run.

usage: bench_kueue.py PLINTH [N]   (default 1000)
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(os.path.dirname(HERE))

if os.environ.get("PLINTH_KUEUE_REEXEC") is None:
    try:
        import yaml  # noqa: F401
    except ImportError:
        r = subprocess.run([os.path.join(ROOT_DIR, "tools", "venv.sh")], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            os.environ["PLINTH_KUEUE_REEXEC"] = "1"
            os.execv(r.stdout.strip(), [r.stdout.strip(), os.path.abspath(__file__), *sys.argv[1:]])

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pylib"))
from kubetest import ok, bail, run, wait, _cleanups  # noqa: E402
from test_controller import Controller  # noqa: E402
from test_kueue_harness import API, World, queues, cond  # noqa: E402

PLINTH = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
ADMIN = "plt_admin_k8s_bench_kueue_0123456789"


def workload(name, queue):
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": name},
            "spec": {"queueName": queue, "maximumExecutionTimeSeconds": 3600,
                     "podSets": [{"name": "main", "count": 1, "template": {"spec": {
                         "restartPolicy": "Never", "containers": [{
                             "name": "trainer", "image": "registry.example/trainer:1.0",
                             "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}}]}}


def admitted(kube, ns):
    st, body = kube.call("GET", f"{API}/namespaces/{ns}/workloads")
    return sum(1 for w in body.get("items", []) if cond(w, "Admitted").get("status") == "True")


def measure(kube, ns, cq, queue):
    """Queues N Workloads on held ClusterQueue cq, lifts the hold, returns
    (seconds until all are admitted, admitted count)."""
    st, body = kube.call("PATCH", f"{API}/clusterqueues/{cq}", {"spec": {"stopPolicy": "Hold"}},
                         "application/merge-patch+json")
    ok(st == 200, f"ClusterQueue {cq} held", body)
    t0 = time.monotonic()
    for i in range(N):
        st, body = kube.call("POST", f"{API}/namespaces/{ns}/workloads", workload(f"w-{i:05d}", queue))
        if st != 201:
            ok(False, f"Workload w-{i:05d} queued", body)
            bail("cannot queue")
    ok(True, f"{N} Workloads queued on held {cq} ({time.monotonic() - t0:.0f} s)")
    time.sleep(5)  # Kueue has seen them all
    ok(admitted(kube, ns) == 0, f"none admitted while {cq} is held")
    st, body = kube.call("PATCH", f"{API}/clusterqueues/{cq}", {"spec": {"stopPolicy": "None"}},
                         "application/merge-patch+json")
    t0 = time.monotonic()
    r = wait(lambda: (lambda n: (n >= N, n))(admitted(kube, ns)), 1800)
    secs = time.monotonic() - t0
    ok(r[0], f"all {N} Workloads of {cq} admitted in {secs:.1f} s", r[1])
    return secs, r[1]


def main():
    import yaml
    world = World("plinth-bench-kueue.", ADMIN, yaml, ("ml", "plain"), budget="100000000",
                  capacity=N + 10)
    kube, kq = world.kube, world.kueue
    queues(kube, "ml", "ml", check=True, cq="gpus-plinth", quota=N + 10)
    queues(kube, "plain", "plain", check=False, cq="gpus-plain", quota=N + 10)
    ctl = Controller(world.tmp, world.kc, world.base, world.service, "kueue-bench", ("--kueue",))
    _cleanups.append(ctl.stop)
    ctl.start()
    r = wait(lambda: (lambda s, b: (cond(b, "Active").get("status") == "True", b))(
        *kube.call("GET", f"{API}/admissionchecks/plinth-budget")), 60)
    ok(r[0], "plinth-budget is Active", ctl.log()[-1500:])

    plain_s, plain_n = measure(kube, "plain", "gpus-plain", "plain")
    check_s, check_n = measure(kube, "ml", "gpus-plinth", "ml")
    plain_rate = plain_n / plain_s if plain_s > 0 else 0
    check_rate = check_n / check_s if check_s > 0 else 0
    print(f"# kueue without check: {plain_n} admitted in {plain_s:.1f} s = {plain_rate:.1f} workloads/s")
    print(f"# kueue with plinth:   {check_n} admitted in {check_s:.1f} s = {check_rate:.1f} workloads/s"
          f" ({100 * check_rate / plain_rate if plain_rate else 0:.0f}% of without)")
    print(f"RESULT n={N} plain_s={plain_s:.2f} plain_rate={plain_rate:.2f} "
          f"check_s={check_s:.2f} check_rate={check_rate:.2f}")
    ok(kq.stop() is not None, "Kueue stops")


if __name__ == "__main__":
    run(main)
