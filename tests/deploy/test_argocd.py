#!/usr/bin/env python3
"""tests/deploy/test_argocd.py - the Argo CD manifests of deploy/argocd/ are valid.

Validates every Application, AppProject and ApplicationSet in deploy/argocd/
against Argo CD's own CRD schemas: the `openAPIV3Schema` of
manifests/crds/*-crd.yaml in the Go module github.com/argoproj/argo-cd/v3
(version ARGOCD_VERSION, fetched with `go mod download` into the Go module
cache), converted to JSON Schema in strict mode: every object that lists its
properties and does not say x-kubernetes-preserve-unknown-fields gets
additionalProperties: false, so a misspelt or invented field fails (the API
server would silently prune it, Argo CD would ignore it).

Then the app of apps itself:
  - the root Application points at the directory holding the children;
  - every child is in the "platform" AppProject, whose sourceRepos and
    destinations allow exactly what the children use;
  - every chart is pinned to an exact version (no ranges, no HEAD);
  - the sync waves follow the dependency order
    project < argocd < {cluster-autoscaler, nvidia-device-plugin} < kueue <
    mlflow < plinth < backstage;
  - the OCI chart (Kueue) has a repository entry with enableOCI.
And it proves the validator can fail: a copy with an unknown field, one
without spec.project and one with a wrong type must each be refused.
Prints TAP. Runs under the repository's .venv (PyYAML, jsonschema).

Usage: test_argocd.py
"""
import copy
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
# the Argo CD the pinned argo-cd chart (10.1.1) installs: its appVersion
ARGOCD_VERSION = "v3.4.4"
# Dependency order: each group syncs in one wave, strictly after the group before.
WAVE_GROUPS = [["project"], ["argocd"], ["cluster-autoscaler", "nvidia-device-plugin"], ["kueue"],
               ["mlflow"], ["plinth"], ["backstage"]]
WAVE_ORDER = [x for g in WAVE_GROUPS for x in g]

try:
    import jsonschema
    import yaml
except ImportError:  # re-run under .venv (tools/venv.sh prints its python)
    if os.environ.get("PLINTH_IAC_REEXEC"):
        raise
    r = subprocess.run([os.path.join(ROOT, "tools", "venv.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        print("Bail out! tools/venv.sh failed: " + r.stderr.strip())
        sys.exit(1)
    os.environ["PLINTH_IAC_REEXEC"] = "1"
    py = r.stdout.strip().splitlines()[-1]
    os.execv(py, [py, os.path.abspath(sys.argv[0]), *sys.argv[1:]])

sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from plinthtest import Tap  # noqa: E402

tap = Tap()
ok = tap.ok


def bail(msg):
    print(f"Bail out! {msg}")
    sys.exit(1)


def go_binary():
    """The Go the tool builds use (tools/k8s-build.sh --go fetches one if needed)."""
    r = subprocess.run([os.path.join(ROOT, "tools", "k8s-build.sh"), "--go"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        bail("no Go toolchain (tools/k8s-build.sh --go): " + r.stderr.strip())
    return os.path.join(r.stdout.strip(), "go")


def crd_dir():
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    r = subprocess.run([go_binary(), "mod", "download", "-json", f"{ARGOCD_MODULE}@{ARGOCD_VERSION}"],
                       capture_output=True, text=True, env=env, cwd="/")
    if r.returncode != 0:
        bail(f"go mod download {ARGOCD_MODULE}@{ARGOCD_VERSION}: {r.stdout}{r.stderr}")
    d = os.path.join(json.loads(r.stdout)["Dir"], "manifests", "crds")
    if not os.path.isdir(d):
        bail(f"no {d}")
    return d


def strict(schema):
    """CRD structural schema -> strict JSON Schema (in place)."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("type", None)
            schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def load_schemas(d):
    schemas = {}
    for path in sorted(glob.glob(os.path.join(d, "*-crd.yaml"))):
        with open(path) as f:
            crd = yaml.safe_load(f)
        kind = crd["spec"]["names"]["kind"]
        group = crd["spec"]["group"]
        for v in crd["spec"]["versions"]:
            s = copy.deepcopy(v["schema"]["openAPIV3Schema"])
            # the API server checks apiVersion/kind/metadata itself; the CRD
            # schema types metadata as a bare object
            s.setdefault("required", [])
            strict(s)
            schemas[(f"{group}/{v['name']}", kind)] = jsonschema.Draft7Validator(s)
    return schemas


def errors(schemas, doc):
    v = schemas.get((doc.get("apiVersion"), doc.get("kind")))
    if v is None:
        return [f"no CRD schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def main():
    d = crd_dir()
    schemas = load_schemas(d)
    print(f"# CRD schemas from {ARGOCD_MODULE}@{ARGOCD_VERSION}: "
          + ", ".join(k for _, k in sorted(schemas)))
    ok({k for _, k in schemas} >= {"Application", "AppProject", "ApplicationSet"},
       "the module has the Application, AppProject and ApplicationSet CRDs")

    docs = {}  # path -> list of documents
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "argocd", "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            docs[os.path.relpath(path, ROOT)] = [x for x in yaml.safe_load_all(f) if x]
    ok(len(docs) >= 8, f"deploy/argocd holds the manifests ({len(docs)} files)")

    argo = []
    for path, ds in docs.items():
        for doc in ds:
            if doc.get("apiVersion", "").startswith("argoproj.io/"):
                e = errors(schemas, doc)
                ok(not e, f"{path}: {doc['kind']} {doc['metadata']['name']} matches the CRD schema",
                   "\n".join(e[:20]))
                argo.append((path, doc))

    # --- the validator can fail -----------------------------------------
    app = next(doc for _, doc in argo if doc["kind"] == "Application")
    bad = copy.deepcopy(app)
    bad["spec"]["source"]["targetRevisoin"] = "1.0.0"
    ok(errors(schemas, bad), "an unknown field (spec.source.targetRevisoin) is refused")
    bad = copy.deepcopy(app)
    del bad["spec"]["project"]
    ok(errors(schemas, bad), "an Application without spec.project is refused")
    bad = copy.deepcopy(app)
    bad["spec"]["syncPolicy"]["retry"] = {"limit": "five"}
    ok(errors(schemas, bad), "a wrong type (retry.limit: \"five\") is refused")
    proj = next(doc for _, doc in argo if doc["kind"] == "AppProject")
    bad = copy.deepcopy(proj)
    bad["spec"]["destinations"][0]["cluster"] = "in-cluster"
    ok(errors(schemas, bad), "an AppProject destination with an unknown key is refused")

    # --- the app of apps --------------------------------------------------
    by_name = {doc["metadata"]["name"]: (path, doc) for path, doc in argo
               if doc["kind"] in ("Application", "AppProject")}
    root = by_name.get("platform", (None, {}))
    ok(root[0] == "deploy/argocd/root.yaml" and root[1].get("kind") == "Application",
       "deploy/argocd/root.yaml is the root Application 'platform'")
    child_dir = root[1]["spec"]["source"]["path"]
    ok(child_dir == "deploy/argocd/platform" and root[1]["spec"]["destination"]["namespace"] == "argocd",
       f"the root applies {child_dir} into namespace argocd")
    ok(root[1]["spec"]["syncPolicy"]["automated"].get("prune") is True,
       "the root prunes (a child removed from git is deleted)")

    children = [(p, d) for p, d in argo if os.path.dirname(p) == child_dir]
    apps = {d["metadata"]["name"]: d for _, d in children if d["kind"] == "Application"}
    projects = [d for _, d in children if d["kind"] == "AppProject"]
    ok(set(apps) == set(WAVE_ORDER[1:]),
       "children: Applications " + ", ".join(sorted(apps)), f"want {WAVE_ORDER[1:]}")
    ok(len(projects) == 1 and projects[0]["metadata"]["name"] == "platform",
       "children: the AppProject 'platform'")
    if not projects:
        bail("no AppProject")
    project = projects[0]
    repos = set(project["spec"]["sourceRepos"])
    dests = {(x.get("server"), x.get("namespace")) for x in project["spec"]["destinations"]}
    used_repos = set()
    for name, a in apps.items():
        spec = a["spec"]
        src = spec["source"]
        used_repos.add(src["repoURL"])
        ok(spec["project"] == "platform", f"{name}: in project platform")
        ok(src["repoURL"] in repos, f"{name}: source {src['repoURL']} is in the project's sourceRepos")
        dest = (spec["destination"].get("server"), spec["destination"].get("namespace"))
        ok(dest in dests, f"{name}: destination {dest[1]} is allowed by the project")
        if "chart" in src:
            ok(re.fullmatch(r"\d+\.\d+\.\d+", str(src.get("targetRevision", ""))) is not None,
               f"{name}: chart {src['chart']} pinned to an exact version ({src.get('targetRevision')})")
        else:
            ok(src.get("path", "").startswith("deploy/helm/"), f"{name}: a chart path in this repository")
    ok(used_repos == repos, "the project allows no repository that no child uses",
       f"unused: {sorted(repos - used_repos)}")
    ok(all(d[1] for d in dests) and "*" not in {d[1] for d in dests},
       "the project names every namespace (no wildcard)")
    ok(all(w.get("group") != "*" and w.get("kind") != "*"
           for w in project["spec"].get("clusterResourceWhitelist", [])),
       "the project's cluster-scoped kinds are listed one by one (no wildcard)")

    def wave(doc):
        return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))
    waves = {"project": wave(project), **{x: wave(a) for x, a in apps.items()}}
    group_waves = [{waves.get(x) for x in g} for g in WAVE_GROUPS]
    ok(all(len(w) == 1 for w in group_waves)
       and all(min(a) < min(b) for a, b in zip(group_waves, group_waves[1:])),
       "sync waves in dependency order: " + ", ".join(f"{x}={waves.get(x)}" for x in WAVE_ORDER))

    oci = [s for _, ds in docs.items() for s in ds
           if s.get("kind") == "Secret"
           and s.get("metadata", {}).get("labels", {}).get("argocd.argoproj.io/secret-type") == "repository"]
    oci_urls = {s["stringData"]["url"] for s in oci if s["stringData"].get("enableOCI") == "true"}
    for name, a in apps.items():
        src = a["spec"]["source"]
        if "chart" in src and not src["repoURL"].startswith("https://"):
            ok(src["repoURL"] in oci_urls, f"{name}: OCI chart repository {src['repoURL']} has enableOCI")
    ok(all(wave(s) < wave(apps["kueue"]) for s in oci), "the OCI repository entry comes before Kueue's wave")

    # the existing ApplicationSet (docs/gitops.md) is still valid
    ok(any(d["kind"] == "ApplicationSet" for _, d in argo), "deploy/argocd/applicationset.yaml validated too")

    # deploy/terraform/bootstrap installs Argo CD from the argocd Application
    # itself (chart, version, values) and the root Application
    tf = open(os.path.join(ROOT, "deploy", "terraform", "bootstrap", "main.tf")).read()
    ok('file("${path.module}/../../argocd/platform/argocd.yaml")' in tf
       and "version    = local.argocd_app.spec.source.targetRevision" in tf,
       "deploy/terraform/bootstrap installs the chart version and values of platform/argocd.yaml")
    ok('file("${path.module}/../../argocd/root.yaml")' in tf,
       "deploy/terraform/bootstrap applies deploy/argocd/root.yaml")

    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
