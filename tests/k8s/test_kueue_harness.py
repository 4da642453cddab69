"""tests/k8s/test_kueue_harness.py - real Kueue for the k8s suite (issue 17):
its CRDs and its manager (tools/k8s-build.sh with PLINTH_K8S_KUEUE=1) on the
suite's API server (cluster.sh), and the queue objects of docs/kueue.md.
Used by test_kueue.py and bench_kueue.py; not a test itself.

How the manager runs outside a pod (docs/kueue.md, "Testing"):
- the CRDs come from the module's config/components/crd/bases with the
  conversion-webhook stanza Kueue's own kustomization adds (service
  kueue-webhook-service/kueue-system, /convert): internal cert management
  injects its CA there. Every object is stored and read as v1beta2 (the
  storage version), so the API server never calls the conversion webhook;
- internalCertManagement is on (it writes its certificate to the Secret
  kueue-system/kueue-webhook-server-cert); a pod would mount that Secret in
  webhook.certDir, here a placeholder certificate stands in for the mount.
  Kueue's admission webhooks are not registered with the API server, so Jobs
  are created suspended (what Kueue's mutating webhook would do);
- metrics off, no leader election, the visibility API server off, only the
  batch/job integration; it acts with the cluster's admin token.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

from kubetest import Cluster, ok, bail, wait, free_port, _cleanups
from test_controller import plinth_setup, grant_controller, kubeconfig_for

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(os.path.dirname(HERE))
API = "/apis/kueue.x-k8s.io/v1beta2"
# The CRDs Kueue's kustomization gives a conversion webhook.
CONVERTED = ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")


def kueue_build():
    """tools/k8s-build.sh with PLINTH_K8S_KUEUE=1: the Kueue directory (bin/kueue, crd/)."""
    t0 = time.monotonic()
    b = subprocess.run([os.path.join(ROOT_DIR, "tools", "k8s-build.sh")], capture_output=True,
                       text=True, env=dict(os.environ, PLINTH_K8S_KUEUE="1"))
    out = dict(l.split("=", 1) for l in b.stdout.split() if "=" in l)
    d = out.get("PLINTH_KUEUE_DIR")
    if not ok(b.returncode == 0 and d and os.access(os.path.join(d, "bin", "kueue"), os.X_OK),
              f"tools/k8s-build.sh provides Kueue's manager and CRDs ({time.monotonic() - t0:.0f} s)",
              b.stderr[-3000:]):
        bail("no Kueue")
    return d


def install_crds(yaml, kube, kdir):
    n = 0
    for f in sorted(os.listdir(os.path.join(kdir, "crd"))):
        with open(os.path.join(kdir, "crd", f)) as fh:
            crd = yaml.safe_load(fh)
        plural = crd["spec"]["names"]["plural"]
        if plural in CONVERTED:
            crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
                "clientConfig": {"service": {"namespace": "kueue-system",
                                             "name": "kueue-webhook-service", "path": "/convert"}},
                "conversionReviewVersions": ["v1"]}}
        st, body = kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if st != 201:
            ok(False, f"CRD {crd['metadata']['name']} created", body)
            bail("CRDs")
        n += 1

    def established():
        st, body = kube.call("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        crds = [c for c in body.get("items", []) if c["spec"]["group"] == "kueue.x-k8s.io"]
        est = [c for c in crds if any(x["type"] == "Established" and x["status"] == "True"
                                      for x in (c.get("status") or {}).get("conditions") or [])]
        return len(est) == n, len(est)
    r = wait(established, 60)
    ok(r[0], f"Kueue's {n} CRDs (from its module) are Established", r[1])


class Kueue:
    """The Kueue manager as a child process (own process group), log in tmp."""

    def __init__(self, cluster, kdir, tmp, yaml):
        self.tmp = tmp
        kube = cluster.admin
        install_crds(yaml, kube, kdir)
        st, body = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "kueue-system"}})
        ok(st == 201, "namespace kueue-system", body)
        # Kueue's install manifests ship this Secret empty; the cert rotator fills it.
        st, body = kube.call("POST", "/api/v1/namespaces/kueue-system/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kueue-webhook-server-cert"}})
        ok(st == 201, "Secret kueue-system/kueue-webhook-server-cert (empty, as Kueue installs it)", body)
        certs = os.path.join(tmp, "kueue-certs")
        os.makedirs(certs, exist_ok=True)
        # The stand-in for the Secret volume a pod would have (see the module doc).
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", os.path.join(certs, "tls.key"), "-out",
                        os.path.join(certs, "tls.crt"), "-subj", "/CN=kueue-webhook-service"],
                       check=True, capture_output=True)
        self.health = free_port()
        cfg = {"apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
               "namespace": "kueue-system",
               "health": {"healthProbeBindAddress": f"127.0.0.1:{self.health}"},
               "metrics": {"bindAddress": "0"},
               "webhook": {"host": "127.0.0.1", "port": free_port(), "certDir": certs},
               "leaderElection": {"leaderElect": False},
               "internalCertManagement": {"enable": True,
                                          "webhookServiceName": "kueue-webhook-service",
                                          "webhookSecretName": "kueue-webhook-server-cert"},
               "clientConnection": {"qps": 500, "burst": 1000},
               "integrations": {"frameworks": ["batch/job"]},
               "featureGates": {"VisibilityOnDemand": False}}
        self.cfg_path = os.path.join(tmp, "kueue-config.yaml")
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML
        self.log_path = os.path.join(tmp, "kueue.log")
        log = open(self.log_path, "ab")
        env = dict(os.environ, KUBECONFIG=cluster.env["KUBECONFIG"],
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        self.proc = subprocess.Popen([os.path.join(kdir, "bin", "kueue"), "--config", self.cfg_path,
                                      "--zap-log-level", "info"],
                                     stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()
        _cleanups.append(self.stop)

        def ready():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/readyz", timeout=5) as r:
                    return r.status == 200, r.status
            except OSError as e:
                return self.proc.poll() is not None, str(e)
        r = wait(ready, 240)
        if not ok(r[0] and self.proc.poll() is None,
                  "Kueue's manager runs on the cluster and is ready (/readyz)", self.tail()):
            bail("Kueue did not start")

    def tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def queues(kube, ns, team, check=True, cq="gpus", flavor="h100", quota=8):
    """A ResourceFlavor for H100 nodes, a ClusterQueue (with the plinth-budget
    check unless check=False) and the team's LocalQueue in ns (named after
    the team: Plinth's team is the Workload's queueName)."""
    objs = []
    if check:
        objs.append(("/admissionchecks", {"apiVersion": "kueue.x-k8s.io/v1beta2",
                                          "kind": "AdmissionCheck", "metadata": {"name": "plinth-budget"},
                                          "spec": {"controllerName": "plinth.io/budget"}}))
    objs.append(("/resourceflavors", {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                                      "metadata": {"name": flavor},
                                      "spec": {"nodeLabels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}}))
    spec = {"namespaceSelector": {},
            "resourceGroups": [{"coveredResources": ["nvidia.com/gpu"],
                                "flavors": [{"name": flavor, "resources": [
                                    {"name": "nvidia.com/gpu", "nominalQuota": quota}]}]}]}
    if check:
        spec["admissionChecksStrategy"] = {"admissionChecks": [{"name": "plinth-budget"}]}
    objs.append(("/clusterqueues", {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
                                    "metadata": {"name": cq}, "spec": spec}))
    objs.append((f"/namespaces/{ns}/localqueues", {"apiVersion": "kueue.x-k8s.io/v1beta2",
                                                   "kind": "LocalQueue",
                                                   "metadata": {"name": team, "namespace": ns},
                                                   "spec": {"clusterQueue": cq}}))
    for path, obj in objs:
        if flavor_exists(kube, path, obj):
            continue
        st, body = kube.call("POST", API + path, obj)
        ok(st == 201, f"{obj['kind']} {obj['metadata']['name']}", body)


def flavor_exists(kube, path, obj):
    """A ResourceFlavor shared by two queues is created once."""
    if obj["kind"] != "ResourceFlavor":
        return False
    return kube.call("GET", API + path + "/" + obj["metadata"]["name"])[0] == 200


def kueue_job(name, queue, gpus=1, max_s=3600):
    """A batch/v1 Job for Kueue: queue-name label, created suspended."""
    res = {"nvidia.com/gpu": str(gpus)}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": queue,
                                                  "kueue.x-k8s.io/max-exec-time-seconds": str(max_s)}},
            "spec": {"suspend": True, "backoffLimit": 0,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "trainer", "image": "registry.example/trainer:1.0",
                         "resources": {"requests": res, "limits": res}}]}}}}


def workload_of(kube, ns, job):
    """The Workload Kueue made for Job `job` (its ownerReference), or None."""
    st, body = kube.call("GET", f"{API}/namespaces/{ns}/workloads")
    for w in body.get("items", []) if st == 200 else []:
        for o in w["metadata"].get("ownerReferences", []):
            if o.get("kind") == "Job" and o.get("name") == job:
                return w
    return None


def cond(obj, t):
    for c in (obj or {}).get("status", {}).get("conditions", []) or []:
        if c["type"] == t:
            return c
    return {}


def grant_kueue(kube, yaml):
    """RBAC for user plinth-controller beyond jobs/pods/leases, as
    deploy/kueue/rbac.yaml gives it: read AdmissionChecks, ResourceFlavors
    and Workloads, update their status."""
    with open(os.path.join(ROOT_DIR, "deploy", "kueue", "rbac.yaml")) as f:
        objs = list(yaml.safe_load_all(f))
    for o in objs:
        path = "/apis/rbac.authorization.k8s.io/v1/" + ("clusterroles" if o["kind"] == "ClusterRole"
                                                        else "clusterrolebindings")
        st, body = kube.call("POST", path, o)
        ok(st == 201, f"RBAC (deploy/kueue/rbac.yaml): {o['kind']} {o['metadata']['name']}", body)


class World:
    """Everything a Kueue scenario needs, cleaned up at the end: Kueue's build,
    the cluster, Plinth (team ml with `budget`, h100-80gb with `capacity`, a
    service token), the namespaces, the controller's RBAC and kubeconfig,
    and the Kueue manager running."""

    def __init__(self, prefix, admin, yaml, namespaces, budget, capacity=16):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        _cleanups.append(lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        kdir = kueue_build()
        self.cluster = Cluster()
        self.cluster.start()
        self.kube = self.cluster.admin
        self.daemon, self.service = plinth_setup(admin, budget=budget, capacity=capacity)
        self.base = self.daemon.base
        for ns in namespaces:
            st, body = self.kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            ok(st == 201, f"namespace {ns}", body)
        grant_controller(self.kube)
        grant_kueue(self.kube, yaml)
        self.kc = os.path.join(self.tmp, "kubeconfig")
        kubeconfig_for(self.cluster, self.cluster.env["KUBE_CONTROLLER_TOKEN"], self.kc)
        self.kueue = Kueue(self.cluster, kdir, self.tmp, yaml)
