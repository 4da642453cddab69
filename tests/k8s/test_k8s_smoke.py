#!/usr/bin/env python3
"""tests/k8s/test_k8s_smoke.py - the real Kubernetes control plane works here.

Groundwork for issue 13 (the controller and the admission webhook): proves
that the plumbing those tests need is real, with no fake anywhere. It builds
(or finds cached) kube-apiserver, kube-controller-manager and etcd
(tools/k8s-build.sh), starts them on loopback (tests/k8s/cluster.sh), and:
  - token authentication and RBAC: the plinth-controller token is refused
    until a ClusterRole is bound to it;
  - a ValidatingWebhookConfiguration pointing at an HTTPS URL on loopback (a
    tiny webhook in this process that denies GPU pods without the
    plinth.io/allocation-id label) is called by the API server: a GPU pod
    without the label is refused with the webhook's reason, a pod without
    GPUs is admitted;
  - a batch/v1 Job asking for nvidia.com/gpu, labelled with an allocation
    id: the real Job controller creates its pod (through the webhook); the
    test acts as scheduler and kubelet (pods/binding, then pods/status:
    Running with startTime, then Succeeded with a terminated container) and
    the Job controller marks the Job Complete.
A missing binary or a failed build fails the test; nothing is skipped.
Prints TAP.

Usage: test_k8s_smoke.py
"""
import base64
import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubetest import Cluster, bail, free_port, k8s_version, now, ok, run, wait  # noqa: E402

NS = "plinth-smoke"
ALLOC_LABEL = "plinth.io/allocation-id"


# --- the webhook: HTTPS on loopback, certificate signed by the cluster's CA --

reviews = []  # every AdmissionReview request received
reviews_lock = threading.Lock()


def gpus(pod):
    spec = pod.get("spec", {})
    total = 0
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        res = c.get("resources", {})
        for part in ("limits", "requests"):
            v = res.get(part, {}).get("nvidia.com/gpu")
            if v is not None:
                total = max(total, int(v))
    return total


class Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        review = json.loads(self.rfile.read(length))
        req = review["request"]
        with reviews_lock:
            reviews.append(req)
        pod = req.get("object") or {}
        labels = pod.get("metadata", {}).get("labels", {}) or {}
        resp = {"uid": req["uid"], "allowed": True}
        if gpus(pod) > 0 and ALLOC_LABEL not in labels:
            resp = {"uid": req["uid"], "allowed": False,
                    "status": {"code": 403,
                               "message": f"smoke-webhook: GPU pod without the {ALLOC_LABEL} label"}}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": resp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_webhook(cluster):
    """Serves the webhook on a free loopback port; returns (url, server)."""
    crt, key = cluster.serving_cert("smoke-webhook")
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Webhook)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{port}/validate", srv


def pod_manifest(name, gpu, labels):
    res = {"limits": {"nvidia.com/gpu": str(gpu)}} if gpu else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "registry.example/trainer:1.0",
                                     "resources": res}]}}


def main():
    # 1-2. the binaries (built or cached; a failure fails) and the control plane
    cluster = Cluster()
    cluster.start()
    kenv = cluster.env
    kube = cluster.admin
    st, ver = kube.call("GET", "/version")
    want = k8s_version()
    ok(st == 200 and want and ver.get("gitVersion") == want, f"the API server reports {want}", ver)
    st, body = kube.call("GET", "/readyz")
    ok(st == 200, "GET /readyz", body)
    ok(os.path.exists(kenv["KUBECONFIG"]) and kenv["KUBE_URL"] in open(kenv["KUBECONFIG"]).read(),
       "DIR/kubeconfig names the API server")

    # 3. token authentication and RBAC
    ctl = cluster.client(kenv["KUBE_CONTROLLER_TOKEN"])
    st, body = ctl.call("GET", "/apis/batch/v1/jobs")
    ok(st == 403, "the plinth-controller token is authenticated but has no rights yet (403)", body)
    st, body = kube.call("GET", "/apis/batch/v1/jobs", None)
    nobody = cluster.client("not-a-token")
    st2, _ = nobody.call("GET", "/apis/batch/v1/jobs")
    ok(st == 200 and st2 == 401, "admin token 200, unknown token 401", (st, st2))
    st, body = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "metadata": {"name": "plinth-controller"},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    ok(st == 201, "create ClusterRole plinth-controller", body)
    st, body = kube.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "metadata": {"name": "plinth-controller"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "plinth-controller"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "plinth-controller"}]})
    ok(st == 201, "bind it to the plinth-controller user", body)
    r = wait(lambda: ((ctl.call("GET", "/apis/batch/v1/jobs")[0] == 200), None), 30)
    ok(r[0], "the plinth-controller token may now list Jobs")

    # 4. a namespace; the service-account controller gives it "default"
    st, body = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    ok(st == 201, f"create namespace {NS}", body)
    r = wait(lambda: (
        kube.call("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/default")[0] == 200, None), 120)
    ok(r[0], "the service-account controller created the default ServiceAccount")

    # 5. the webhook, called by the API server for pods of that namespace
    wh_url, srv = start_webhook(cluster)
    ca = cluster.ca_pem()
    st, body = kube.call("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", {
        "metadata": {"name": "smoke-gpu-allocation"},
        "webhooks": [{
            "name": "gpu-allocation.smoke.plinth.io",
            "clientConfig": {"url": wh_url, "caBundle": base64.b64encode(ca).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 10}]})
    ok(st == 201, f"ValidatingWebhookConfiguration with url {wh_url} accepted", body)

    # The API server loads webhook configurations asynchronously: retry a
    # label-less GPU pod (deleting it if admitted before the webhook was live)
    # until it is refused; bounded.
    def probe():
        probe.i += 1
        name = f"probe-{probe.i}"
        st, body = kube.call("POST", f"/api/v1/namespaces/{NS}/pods", pod_manifest(name, 1, {}))
        if st == 201:
            kube.call("DELETE", f"/api/v1/namespaces/{NS}/pods/{name}?gracePeriodSeconds=0")
            return (False, (st, body))
        return (st != 201, (st, body))
    probe.i = 0
    r = wait(probe, 60)
    st, body = r[1]
    msg = body.get("message", "") if isinstance(body, dict) else ""
    ok(r[0] and st == 403 and "smoke-webhook: GPU pod without the plinth.io/allocation-id label" in msg
       and "denied the request" in msg,
       "a GPU pod without the allocation label is refused by the API server with the webhook's reason",
       (st, body))
    with reviews_lock:
        denied = [q for q in reviews if q.get("name", "").startswith("probe-")]
    ok(denied and denied[-1].get("operation") == "CREATE" and denied[-1].get("kind", {}).get("kind") == "Pod"
       and denied[-1].get("namespace") == NS and denied[-1].get("userInfo", {}).get("username") == "plinth-admin",
       "the webhook got an admission.k8s.io/v1 review: CREATE Pod, namespace, user",
       denied[-1:] if denied else reviews[-1:])
    st, body = kube.call("POST", f"/api/v1/namespaces/{NS}/pods", pod_manifest("cpu-only", 0, {}))
    ok(st == 201, "a pod without GPUs is admitted", body)

    # 6. a GPU Job: the real Job controller creates its pod
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "train-smoke", "labels": {ALLOC_LABEL: "alloc-smoke-1"}},
           "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 3600,
                    "template": {"metadata": {"labels": {ALLOC_LABEL: "alloc-smoke-1"}},
                                 "spec": {"restartPolicy": "Never",
                                          "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                                          "containers": [{"name": "trainer",
                                                          "image": "registry.example/trainer:1.0",
                                                          "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}
    st, body = kube.call("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", job)
    ok(st == 201, "create batch/v1 Job train-smoke (1 nvidia.com/gpu, allocation label)", body)

    def job_pod():
        st, body = kube.call("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dtrain-smoke")
        items = body.get("items", []) if st == 200 else []
        return (len(items) > 0, items)
    r = wait(job_pod, 120)
    pods = r[1] if r[0] else []
    if not ok(len(pods) == 1, "the Job controller created one pod", r):
        bail("no pod")
    pod = pods[0]
    pname = pod["metadata"]["name"]
    ok(pod["metadata"].get("labels", {}).get(ALLOC_LABEL) == "alloc-smoke-1"
       and pod["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu") == "1",
       "its pod carries the allocation label and the GPU limit", pod["metadata"])
    with reviews_lock:
        seen = [q for q in reviews if (q.get("object", {}).get("metadata", {}).get("labels") or {})
                .get(ALLOC_LABEL) == "alloc-smoke-1"]
    ok(seen and seen[0].get("userInfo", {}).get("username") == "system:kube-controller-manager",
       "the webhook reviewed the Job's pod, created by the controller manager",
       [q.get("userInfo") for q in seen])

    # 7. act as scheduler and kubelet
    st, body = kube.bind(NS, pname, "gpu-node-1")
    ok(st == 201, "bind the pod to node gpu-node-1 (pods/binding)", body)
    started = now()
    st, body = kube.patch_status(NS, pname, {"phase": "Running", "startTime": started,
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started}],
                   "containerStatuses": [{"name": "trainer", "image": "registry.example/trainer:1.0",
                                          "imageID": "", "ready": True, "started": True,
                                          "restartCount": 0,
                                          "state": {"running": {"startedAt": started}}}]})
    ok(st == 200 and body.get("status", {}).get("phase") == "Running"
       and body["status"].get("startTime") == started,
       "pods/status: Running with startTime", body.get("status"))
    r = wait(lambda: (lambda s: (s.get("active") == 1 and s.get("ready") == 1, s))(
        kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/train-smoke")[1].get("status", {})), 120)
    ok(r[0], "the Job controller counts it active and ready", r[1])
    time.sleep(1)  # a measurable run time
    finished = now()
    st, body = kube.patch_status(NS, pname, {"phase": "Succeeded",
                   "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": finished,
                                   "reason": "PodCompleted"}],
                   "containerStatuses": [{"name": "trainer", "image": "registry.example/trainer:1.0",
                                          "imageID": "", "ready": False, "started": False,
                                          "restartCount": 0,
                                          "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                   "startedAt": started,
                                                                   "finishedAt": finished}}}]})
    ok(st == 200 and body.get("status", {}).get("phase") == "Succeeded",
       "pods/status: Succeeded, container terminated with exit code 0", body.get("status"))

    def complete():
        st, j = kube.call("GET", f"/apis/batch/v1/namespaces/{NS}/jobs/train-smoke")
        conds = {c["type"]: c for c in (j.get("status", {}).get("conditions") or [])} if st == 200 else {}
        return (conds.get("Complete", {}).get("status") == "True", j)
    r = wait(complete, 120)
    j = r[1] if isinstance(r[1], dict) else {}
    s = j.get("status", {})
    ok(r[0] and s.get("succeeded") == 1 and s.get("completionTime") and not s.get("active"),
       "the real Job controller marks the Job Complete (succeeded 1, completionTime)", s)
    conds = {c["type"]: c for c in (s.get("conditions") or [])}
    ok("lastTransitionTime" in conds.get("Complete", {}),
       "the Complete condition has a transition time (the end the controller will bill to)", conds)

    srv.shutdown()
    # 8. stop: every process group gone, DIR removed
    pids = cluster.pids()
    st = cluster.stop()

    def alive(pid):  # a zombie is dead: it waits for whoever adopted it to reap it
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    ok(st is not None and st.returncode == 0 and not os.path.exists(cluster.dir)
       and not any(alive(p) for p in pids),
       "cluster.sh stop: etcd, kube-apiserver, kube-controller-manager stopped, DIR removed",
       (st and st.stderr, [p for p in pids if alive(p)]))


run(main)
