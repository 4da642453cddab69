#!/usr/bin/env python3
"""tests/deploy/test_argocd_apiserver.py - a real API server accepts deploy/argocd.

test_argocd.py checks the manifests against Argo CD's CRD schemas in Python;
this test asks the real thing. It starts the throwaway control plane of
tests/k8s (kubetest.Cluster: etcd + kube-apiserver built from the Go module
proxy), installs Argo CD's own CRDs (manifests/crds of the Go module
github.com/argoproj/argo-cd/v3, the version test_argocd.py pins) and creates
every manifest of deploy/argocd/ with fieldValidation=Strict, so the API
server's structural-schema validation refuses an unknown or duplicated field
instead of silently pruning it. Then:
  - every object reads back as written (spec and annotations unchanged);
  - a copy with a misspelt field (spec.source.targetRevisoin) is refused
    (400, "strict decoding error: unknown field" and its name), and one
    without spec.project is refused (422).
Nothing runs Argo CD itself (no controller; its images cannot be pulled
here): what is proved is that the platform's objects are what the CRDs of
that Argo CD version accept. Prints TAP.

Usage: test_argocd_apiserver.py
"""
import copy
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "k8s"))
sys.path.insert(0, HERE)
from kubetest import Cluster, bail, ok, run, wait  # noqa: E402
from test_argocd import ROOT, crd_dir, yaml  # noqa: E402  (re-executes under .venv if needed)

STRICT = "?fieldValidation=Strict"


def path_for(doc):
    api = doc["apiVersion"]
    plural = {"Application": "applications", "AppProject": "appprojects",
              "ApplicationSet": "applicationsets", "Secret": "secrets"}[doc["kind"]]
    ns = doc["metadata"].get("namespace", "argocd")
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    return f"{base}/namespaces/{ns}/{plural}"


def main():
    c = Cluster()
    c.start()
    kube = c.admin

    # Argo CD's CRDs, as its release installs them
    names = []
    for f in sorted(glob.glob(os.path.join(crd_dir(), "*-crd.yaml"))):
        with open(f) as fh:
            crd = yaml.safe_load(fh)
        st, body = kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        ok(st == 201, f"CRD {crd['metadata']['name']} created", body)
        names.append(crd["metadata"]["name"])

    def established():
        for n in names:
            st, body = kube.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}")
            conds = {x["type"]: x["status"] for x in (body.get("status") or {}).get("conditions") or []}
            if conds.get("Established") != "True":
                return False, n
        return True, None
    done, which = wait(established, 120)
    if not ok(done, "the CRDs are Established", which):
        bail("CRDs not served")

    st, body = kube.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": "argocd"}})
    ok(st == 201, "namespace argocd created", body)

    docs = []
    for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "argocd", "**", "*.yaml"), recursive=True)):
        with open(f) as fh:
            docs += [(os.path.relpath(f, ROOT), d) for d in yaml.safe_load_all(fh) if d]
    for rel, d in docs:
        name = d["metadata"]["name"]
        st, body = kube.call("POST", path_for(d) + STRICT, d)
        if not ok(st == 201, f"{rel}: {d['kind']} {name} created with strict field validation", body):
            continue
        st, got = kube.call("GET", f"{path_for(d)}/{name}")
        same = st == 200 and (got.get("spec") == d.get("spec") if "spec" in d else True) and \
            all(got["metadata"].get("annotations", {}).get(k) == v
                for k, v in d["metadata"].get("annotations", {}).items())
        ok(same, f"{rel}: {d['kind']} {name} reads back as written (nothing pruned)",
           f"{got.get('spec')}\nwant {d.get('spec')}")

    app = next(d for _, d in docs if d["kind"] == "Application")
    bad = copy.deepcopy(app)
    bad["metadata"]["name"] = "bad-field"
    bad["spec"]["source"]["targetRevisoin"] = "1.0.0"
    st, body = kube.call("POST", path_for(bad) + STRICT, bad)
    ok(st in (400, 422) and "targetRevisoin" in str(body),
       f"the API server refuses a misspelt field (HTTP {st})", body)
    bad = copy.deepcopy(app)
    bad["metadata"]["name"] = "no-project"
    del bad["spec"]["project"]
    st, body = kube.call("POST", path_for(bad) + STRICT, bad)
    ok(st == 422 and "project" in str(body), f"the API server refuses an Application without spec.project (HTTP {st})",
       body)


if __name__ == "__main__":
    run(main)
