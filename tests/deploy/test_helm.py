#!/usr/bin/env python3
"""tests/deploy/test_helm.py - the Helm chart deploy/helm/plinth, checked by
the real tools and installed into a real API server.

1. `helm lint --strict` with the defaults and each values file in the chart's
   ci/ directory; values.schema.json refuses bad values (replicas 0, a webhook
   URL without its CA).
2. A real control plane (tests/k8s/cluster.sh: etcd, kube-apiserver,
   kube-controller-manager) and a real `plinth serve` with its TLS webhook
   listener on loopback. The API server has no admission configuration: like
   a managed control plane (EKS, GKE, AKS) it calls the webhook with no token
   and no client certificate (docs/kubernetes.md, "Security").
3. Schemas generated OFFLINE from that API server's /openapi/v2 (strict: no
   unknown fields; int-or-string and quantities as Kubernetes accepts them);
   plus the CRDs of ServiceMonitor and cert-manager's Certificate (from the
   operators' Go modules, tools/deploy-tools.sh); `helm template` of every
   values file validated with kubeconform against them. A manifest with an
   unknown field is refused, so the schemas do check. Then every rendered
   object is also created in the API server as a dry run with strict field
   validation (the CRDs applied first): the server's own verdict.
4. What each render must hold: security contexts, probes, the PostgreSQL URL
   from a Secret, the controller's least-privilege RBAC (delete only with
   enforce, a Role with watchNamespace), the generated CA (openssl verifies
   the serving certificate and its DNS names), cert-manager's injection.
5. `helm install` into the API server (webhook.url pointing at the loopback
   daemon): the objects exist, SubjectAccessReviews show the controller's
   rights are exactly the designed ones, and the installed
   ValidatingWebhookConfiguration makes the API server refuse an unlabelled
   GPU pod in a team namespace with Plinth's reason, while a pod without GPUs
   and a namespace without the team label pass. After `helm uninstall` the
   same GPU pod is admitted: the refusal came from the chart's webhook.
   The NOTES say the webhook needs no token (no managed-control-plane
   warning any more).
6. A second release with the chart-generated CA: its Secret's CA is the
   installed caBundle, and `helm upgrade` keeps both (lookup); its NOTES
   point at networkPolicy.webhookFrom.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
try:
    import yaml
except ImportError:  # PyYAML is in the test venv (tests/requirements.txt): run again there
    if os.environ.get("PLINTH_DEPLOY_VENV"):
        raise
    py = subprocess.run([os.path.join(ROOT, "tools", "venv.sh")], capture_output=True, text=True).stdout.strip()
    os.environ["PLINTH_DEPLOY_VENV"] = "1"
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])
sys.path.insert(0, os.path.join(ROOT, "tests", "k8s"))
sys.path.insert(0, os.path.join(ROOT, "tests", "pylib"))
from kubetest import Cluster, ok, bail, run, wait, _cleanups  # noqa: E402
from plinthtest import Daemon  # noqa: E402

PLINTH = sys.argv[1]
CHART = os.path.join(ROOT, "deploy", "helm", "plinth")
CI = os.path.join(CHART, "ci")
ADMIN = "plt_admin_helm_chart_test_0123456789"
DENIED = 'admission webhook "gpu-allocations.plinth.io" denied the request: '


class Helm:
    def __init__(self, binary, tmp, kubeconfig=None):
        self.binary = binary
        self.env = dict(os.environ, HELM_CACHE_HOME=os.path.join(tmp, "helm-cache"),
                        HELM_CONFIG_HOME=os.path.join(tmp, "helm-config"),
                        HELM_DATA_HOME=os.path.join(tmp, "helm-data"),
                        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        if kubeconfig:
            self.env["KUBECONFIG"] = kubeconfig

    def __call__(self, *args):
        return subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env,
                              timeout=300)


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(objs):
    out = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def conv(node):
    """A schema made strict (an object with properties admits no other
    fields, unless it preserves unknown ones) with int-or-string as
    Kubernetes accepts it (x-kubernetes-int-or-string in CRDs)."""
    if isinstance(node, dict):
        # `is True`: JSONSchemaProps has properties of these names (objects).
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string") is True:
            return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
        n = {k: conv(v) for k, v in node.items()}
        if ("properties" in n and "additionalProperties" not in n
                and n.get("x-kubernetes-preserve-unknown-fields") is not True):
            n["additionalProperties"] = False
        return n
    if isinstance(node, list):
        return [conv(v) for v in node]
    return node


def schema_name(group, version, kind):
    """The file kubeconform looks up: {{ .ResourceKind }}{{ .KindSuffix }}.json."""
    suffix = "-" + version.lower() if not group else f"-{group.split('.')[0].lower()}-{version.lower()}"
    return f"{kind.lower()}{suffix}.json"


def crd_to_schemas(crd, dest):
    """One kubeconform schema per served version of a CRD (its openAPIV3Schema)."""
    n = 0
    for v in crd["spec"]["versions"]:
        with open(os.path.join(dest, schema_name(crd["spec"]["group"], v["name"], crd["spec"]["names"]["kind"])),
                  "w") as f:
            json.dump(conv(v["schema"]["openAPIV3Schema"]), f)
        n += 1
    return n


def openapi_to_schemas(spec, dest):
    """kubeconform's schema directory from an OpenAPI v2 document: one file
    per kind referring into _definitions.json."""
    defs = {}
    for name, d in spec["definitions"].items():
        defs[name] = conv(d)
        if name.endswith("api.resource.Quantity"):
            defs[name] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    with open(os.path.join(dest, "_definitions.json"), "w") as f:
        json.dump({"definitions": defs}, f)
    n = 0
    for name, d in spec["definitions"].items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            with open(os.path.join(dest, schema_name(gvk["group"], gvk["version"], gvk["kind"])), "w") as f:
                json.dump({"$ref": f"_definitions.json#/definitions/{name}"}, f)
            n += 1
    return n


def make_webhook_tls(tmp):
    """A throwaway CA and a 127.0.0.1 serving certificate for the daemon."""
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=tmp)
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
       "-days", "2", "-subj", "/CN=plinth-helm-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign")
    with open(os.path.join(tmp, "srv.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
       "-subj", "/CN=127.0.0.1")
    sh("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
       "-out", "srv.crt", "-days", "2", "-extfile", "srv.ext")
    return tuple(os.path.join(tmp, n) for n in ("ca.crt", "srv.crt", "srv.key"))


def check_security(objs, what):
    for o in objs:
        if o["kind"] != "Deployment":
            continue
        spec = o["spec"]["template"]["spec"]
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            ok(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
               and sc.get("runAsNonRoot") is True and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
               and sc.get("capabilities", {}).get("drop") == ["ALL"] and c.get("resources", {}).get("limits"),
               f"{what}: {o['metadata']['name']}/{c['name']}: read-only root, no escalation, non-root, "
               "seccomp RuntimeDefault, no capabilities, resource limits", sc)


def render_checks(name, objs, tmp):
    k = by_kind(objs)
    check_security(objs, name)
    api_dep = next(d for d in k["Deployment"] if d["metadata"]["labels"]["app.kubernetes.io/component"] == "api")
    c = api_dep["spec"]["template"]["spec"]["containers"][0]
    probes = (c.get("livenessProbe", {}).get("httpGet", {}).get("path"),
              c.get("readinessProbe", {}).get("httpGet", {}).get("path"))
    ok(probes == ("/healthz", "/readyz") and c["args"][0] == "serve",
       f"{name}: API `plinth serve`, liveness /healthz, readiness /readyz", (c["args"], probes))
    if name == "default":
        env = {e["name"]: e for e in c["env"]}
        ok(env.get("PLINTH_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef") ==
           {"name": "plinth-database", "key": "url"} and api_dep["spec"]["replicas"] == 2,
           "default: 2 API replicas on the PostgreSQL URL from Secret plinth-database", env)
        ok(api_dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False,
           "default: the API pods get no Kubernetes token")
        ok({"--webhook-listen", "--tls-cert", "--tls-key"} <= set(c["args"]),
           "default: the API serves the webhook over TLS (--webhook-listen, --tls-cert, --tls-key)", c["args"])
        cr = k["ClusterRole"][0]["rules"]
        ok(cr == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
           "default: controller ClusterRole: get/list/watch jobs and pods, nothing else", cr)
        roles = {r["metadata"]["name"]: r for r in k["Role"]}
        lease = roles.get("plinth-controller-leader-election", {}).get("rules")
        ok(lease == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                     {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "resourceNames": ["plinth-controller"], "verbs": ["get", "update"]}],
           "default: Lease rights only in the release namespace, update only of its own Lease", lease)
        ctl = next(d for d in k["Deployment"] if d["metadata"]["name"] == "plinth-controller")
        a = ctl["spec"]["template"]["spec"]["containers"][0]["args"]
        ok(a[:5] == ["controller", "--lease-namespace", "plinth", "--lease-name", "plinth-controller"]
           and "--enforce" not in a, "default: `plinth controller` elects a leader, does not enforce", a)
        w = k["ValidatingWebhookConfiguration"][0]["webhooks"][0]
        ok(w["namespaceSelector"] == {"matchExpressions": [{"key": "plinth.io/team", "operator": "Exists"}]}
           and "objectSelector" not in w and w["failurePolicy"] == "Fail"
           and w["clientConfig"]["service"] == {"namespace": "plinth", "name": "plinth-webhook", "port": 8443,
                                                "path": "/v1/admission/review"},
           "default: webhook scoped to plinth.io/team namespaces, Fail, to the webhook Service", w)
        sec = next(s for s in k["Secret"] if s["type"] == "kubernetes.io/tls")
        files = {}
        for key in ("tls.crt", "ca.crt"):
            files[key] = os.path.join(tmp, "gen-" + key)
            with open(files[key], "wb") as f:
                f.write(base64.b64decode(sec["data"][key]))
        ok(sec["data"]["ca.crt"] == w["clientConfig"]["caBundle"],
           "default: the webhook's caBundle is the generated CA of the TLS Secret")
        v = subprocess.run(["openssl", "verify", "-CAfile", files["ca.crt"], "-verify_hostname",
                            "plinth-webhook.plinth.svc", files["tls.crt"]], capture_output=True, text=True)
        ok(v.returncode == 0, "default: openssl verifies the generated certificate for plinth-webhook.plinth.svc "
           "against the generated CA", v.stdout + v.stderr)
        pdb = k["PodDisruptionBudget"][0]["spec"]
        ok(pdb["minAvailable"] == 1 and "HorizontalPodAutoscaler" not in k and "Ingress" not in k
           and "ServiceMonitor" not in k and len(k["NetworkPolicy"]) == 2,
           "default: PDB minAvailable 1, two NetworkPolicies, no HPA/Ingress/ServiceMonitor", sorted(k))
    elif name == "cert-manager":
        cert = k["Certificate"][0]
        vwc = k["ValidatingWebhookConfiguration"][0]
        ok(cert["spec"]["secretName"] == "plinth-webhook-tls"
           and "plinth-webhook.plinth.svc" in cert["spec"]["dnsNames"]
           and cert["spec"]["issuerRef"] == {"name": "platform-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
           and vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "plinth/plinth-webhook"
           and "caBundle" not in vwc["webhooks"][0]["clientConfig"]
           and not any(s["type"] == "kubernetes.io/tls" for s in k.get("Secret", [])),
           "cert-manager: a Certificate for the webhook Service, CA injected by cainjector, no generated Secret",
           (cert, vwc["metadata"]))
    elif name == "ingress-hpa-servicemonitor":
        ing = k["Ingress"][0]["spec"]
        hpa = k["HorizontalPodAutoscaler"][0]["spec"]
        sm = k["ServiceMonitor"][0]
        ok(ing["ingressClassName"] == "alb" and hpa["maxReplicas"] == 8 and "replicas" not in api_dep["spec"]
           and [e["port"] for e in sm["spec"]["endpoints"]] == ["http", "metrics"]
           and sm["metadata"]["labels"]["release"] == "kube-prometheus-stack",
           "ingress-hpa-servicemonitor: ALB Ingress, HPA 2-8 owning replicas, ServiceMonitor on http and metrics",
           (ing, hpa, sm["spec"]))
        ok(c["image"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/plinth:0.1.0",
           "ingress-hpa-servicemonitor: the ECR image", c["image"])
    elif name == "namespaced-enforce":
        role = next(r for r in k["Role"] if r["metadata"].get("namespace") == "ml")
        ok("ClusterRole" not in k and role["rules"][0]["verbs"] == ["get", "list", "watch", "delete"]
           and "ValidatingWebhookConfiguration" not in k and "--webhook-listen" not in c["args"]
           and "PLINTH_DATABASE_URL" not in {e["name"] for e in c.get("env", [])},
           "namespaced-enforce: a Role in ml with delete on jobs, no ClusterRole, no webhook, SQLite",
           (role, sorted(k)))


def main():
    tmp = tempfile.mkdtemp(prefix="plinth-helm.")
    _cleanups.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "tools", "deploy-tools.sh")], capture_output=True, text=True)
    tools = dict(l.split("=", 1) for l in r.stdout.split() if "=" in l)
    if not ok(r.returncode == 0 and "PLINTH_HELM" in tools and "PLINTH_KUBECONFORM" in tools
              and "PLINTH_DEPLOY_CRDS" in tools,
              f"tools/deploy-tools.sh provides helm, kubeconform and the CRDs ({time.monotonic() - t0:.0f} s)",
              r.stderr[-3000:]):
        bail("no tools")
    helm = Helm(tools["PLINTH_HELM"], tmp)
    v = helm("version", "--short")
    ok(v.returncode == 0 and v.stdout.startswith("v4."), f"helm {v.stdout.strip()}", v.stderr)

    values = sorted(f for f in os.listdir(CI) if f.endswith("-values.yaml"))
    renders = {}
    for vf in values:
        r = helm("lint", "--strict", CHART, "-f", os.path.join(CI, vf))
        ok(r.returncode == 0, f"helm lint --strict -f ci/{vf}", r.stdout + r.stderr)
    for bad, why in ((["--set", "api.replicas=0"], "/api/replicas"),
                     (["--set", "webhook.url=https://127.0.0.1:8443"], "/webhook/caBundle"),
                     (["--set", "controller.enforc=true"], "enforc")):
        r = helm("lint", "--strict", CHART, *bad)
        ok(r.returncode != 0 and why in r.stdout + r.stderr,
           f"values.schema.json refuses {' '.join(bad[1:])} ({why})", r.stdout[-1500:] + r.stderr[-1500:])

    # Plinth with its TLS webhook listener, then the API server that calls it.
    ca, crt, key = make_webhook_tls(tmp)
    try:
        daemon = Daemon(PLINTH, ADMIN, tmp=tmp, args=("--webhook-listen", "127.0.0.1:0",
                                                      "--tls-cert", crt, "--tls-key", key))
    except RuntimeError as e:
        bail(f"no Plinth daemon: {e}")
    _cleanups.append(daemon.stop)
    lines = daemon.base.split()
    if not ok(len(lines) == 2 and lines[1].startswith("https://127.0.0.1:"),
              "plinth serve: HTTP API and TLS webhook listener", lines):
        bail("no webhook listener")
    hook = lines[1].rstrip("/")
    cluster = Cluster()
    cluster.start()  # no admission configuration: no webhook credentials, as on EKS/GKE/AKS
    kube = cluster.admin
    helm = Helm(tools["PLINTH_HELM"], tmp, cluster.env["KUBECONFIG"])
    st, ver = kube.call("GET", "/version")
    kver = ver.get("gitVersion", "").lstrip("v")

    # Schemas from the real API server's OpenAPI, offline.
    st, spec = kube.call("GET", "/openapi/v2")
    schemas = os.path.join(tmp, "schemas")
    os.mkdir(schemas)
    n = openapi_to_schemas(spec, schemas) if st == 200 else 0
    ok(n > 100, f"{n} kind schemas generated from the API server's /openapi/v2 (Kubernetes {kver})", st)
    crds = []
    for name in ("servicemonitors", "certificates"):
        with open(os.path.join(tools["PLINTH_DEPLOY_CRDS"], name + ".yaml")) as f:
            crds += docs(f.read())
    n = sum(crd_to_schemas(c, schemas) for c in crds)
    ok(n >= 2, f"{n} schemas from the CRDs {[c['metadata']['name'] for c in crds]}")
    loc = os.path.join(schemas, "{{ .ResourceKind }}{{ .KindSuffix }}.json")

    def kubeconform(path):
        r = subprocess.run([tools["PLINTH_KUBECONFORM"], "-strict", "-summary", "-output", "json",
                            "-schema-location", loc, path],
                           capture_output=True, text=True, timeout=120)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, {"raw": r.stdout + r.stderr}

    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
                "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
                "    spec: {containers: [{name: c, image: i}]}\n")
    rc, res = kubeconform(bad)
    ok(rc != 0 and "replica" in json.dumps(res), "kubeconform refuses a Deployment with an unknown field "
       "(spec.replica): the schemas are strict", res)

    for vf in values:
        name = vf[:-len("-values.yaml")]
        r = helm("template", "plinth", CHART, "-n", "plinth", "-f", os.path.join(CI, vf), "--kube-version", kver)
        if not ok(r.returncode == 0, f"helm template -f ci/{vf}", r.stderr[-2000:]):
            continue
        path = os.path.join(tmp, f"render-{name}.yaml")
        with open(path, "w") as f:
            f.write(r.stdout)
        objs = docs(r.stdout)
        rc, res = kubeconform(path)
        summ = res.get("summary", {})
        ok(rc == 0 and summ.get("valid") == len(objs) and summ.get("invalid") == 0
           and summ.get("errors") == 0 and summ.get("skipped") == 0,
           f"kubeconform -strict ci/{vf}: all {summ.get('valid')} objects valid against the API server's "
           "and the CRDs' schemas", res)
        render_checks(name, objs, tmp)
        renders[name] = objs

    # The server's verdict: every rendered object created as a dry run with
    # strict field validation (unknown or duplicate fields are errors).
    for c in crds:
        st, b = kube.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", c)
        ok(st == 201, f"CRD {c['metadata']['name']} applied", b.get("message"))
    for c in crds:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c['metadata']['name']}"
        r = wait(lambda: (lambda s, b: (any(x["type"] == "Established" and x["status"] == "True"
                                            for x in (b.get("status") or {}).get("conditions") or []), b))(
            *kube.call("GET", path)), 60)
        ok(r[0], f"CRD {c['metadata']['name']} established")
    for ns, labels in (("plinth", {}), ("ml", {"plinth.io/team": "ml"}), ("scratch", {})):
        st, b = kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns, "labels": labels}})
        ok(st == 201, f"namespace {ns} {labels}", b)
    plural = {}
    for gv in {o["apiVersion"] for objs in renders.values() for o in objs}:
        st, b = kube.call("GET", ("/api/" if "/" not in gv else "/apis/") + gv)
        for res in b.get("resources", []):
            if "/" not in res["name"]:
                plural[(gv, res["kind"])] = (res["name"], res["namespaced"])
    for name, objs in renders.items():
        refused = []
        for o in objs:
            res, namespaced = plural.get((o["apiVersion"], o["kind"]), (None, None))
            if res is None:
                refused.append((o["kind"], "no such resource"))
                continue
            base = ("/api/" if "/" not in o["apiVersion"] else "/apis/") + o["apiVersion"]
            if namespaced:
                base += "/namespaces/" + o["metadata"].get("namespace", "plinth")
            st, b = kube.call("POST", f"{base}/{res}?dryRun=All&fieldValidation=Strict", o)
            if st != 201:
                refused.append((o["kind"], o["metadata"]["name"], st, b.get("message")))
        ok(not refused, f"API server dry run (strict fields) accepts all {len(objs)} objects of ci/{name}",
           refused)

    # helm install into the real API server; the webhook URL is the daemon.
    values_file = os.path.join(tmp, "install-values.yaml")
    with open(ca) as f:
        pem = f.read()
    with open(values_file, "w") as f:
        yaml.safe_dump({"webhook": {"url": hook, "caBundle": pem}}, f)
    r = helm("install", "plinth", CHART, "-n", "plinth", "--create-namespace", "-f", values_file)
    if not ok(r.returncode == 0 and "STATUS: deployed" in r.stdout, "helm install plinth into the API server",
              r.stdout[-2000:] + r.stderr[-2000:]):
        bail("helm install failed")
    _cleanups.append(lambda: helm("uninstall", "plinth", "-n", "plinth"))
    ok(f"The API server calls {hook}/v1/admission/review" in r.stdout
       and "token" not in r.stdout.split("Admission webhook:")[-1]
       and "webhook.enabled=false" not in r.stdout,
       "NOTES: the webhook URL, no token needed, no managed-control-plane warning", r.stdout[-1500:])
    for path, what in (("/apis/apps/v1/namespaces/plinth/deployments/plinth", "API Deployment"),
                       ("/apis/apps/v1/namespaces/plinth/deployments/plinth-controller", "controller Deployment"),
                       ("/api/v1/namespaces/plinth/services/plinth", "API Service"),
                       ("/api/v1/namespaces/plinth/serviceaccounts/plinth-controller", "controller ServiceAccount"),
                       ("/apis/policy/v1/namespaces/plinth/poddisruptionbudgets/plinth", "PodDisruptionBudget"),
                       ("/apis/networking.k8s.io/v1/namespaces/plinth/networkpolicies/plinth-api", "NetworkPolicy"),
                       ("/apis/rbac.authorization.k8s.io/v1/clusterroles/plinth-plinth-controller", "ClusterRole"),
                       ("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
                        "plinth-plinth-gpu-allocations", "ValidatingWebhookConfiguration")):
        st, b = kube.call("GET", path)
        ok(st == 200 and b["metadata"]["labels"].get("app.kubernetes.io/managed-by") == "Helm",
           f"installed: {what} {b.get('metadata', {}).get('name')}", (st, b.get("message")))
    st, b = kube.call("GET", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"
                      "plinth-plinth-gpu-allocations")
    ok(b["webhooks"][0]["clientConfig"].get("url") == hook + "/v1/admission/review",
       "the installed webhook calls webhook.url/v1/admission/review", b["webhooks"][0]["clientConfig"].get("url"))

    sa = "system:serviceaccount:plinth:plinth-controller"

    def can(verb, resource, ns, group="", name=""):
        st, b = kube.call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                          {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                           "spec": {"user": sa, "groups": ["system:serviceaccounts", "system:serviceaccounts:plinth"],
                                    "resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                                           "namespace": ns, "name": name}}})
        return st == 201 and b.get("status", {}).get("allowed") is True
    rights = [("watch", "jobs", "ml", "batch", "", True), ("list", "pods", "vision", "", "", True),
              ("delete", "jobs", "ml", "batch", "", False), ("create", "pods", "ml", "", "", False),
              ("get", "secrets", "plinth", "", "", False), ("update", "deployments", "plinth", "apps", "", False),
              ("update", "leases", "plinth", "coordination.k8s.io", "plinth-controller", True),
              ("update", "leases", "plinth", "coordination.k8s.io", "someone-else", False),
              ("create", "leases", "ml", "coordination.k8s.io", "", False)]
    got = [(v, res, ns, nm, can(v, res, ns, g, nm)) for v, res, ns, g, nm, _ in rights]
    ok([x[4] for x in got] == [x[5] for x in rights],
       "RBAC as designed: controller may watch jobs / list pods anywhere and update its own Lease; not delete "
       "jobs, create pods, read Secrets, touch Deployments, another Lease, or Leases elsewhere", got)

    def pod(name, gpus):
        p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
             "spec": {"restartPolicy": "Never", "nodeSelector": {"plinth.io/gpu-type": "h100-80gb"},
                      "containers": [{"name": "t", "image": "registry.example/trainer:1.0"}]}}
        if gpus:
            p["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        return p
    reason = "the Pod asks for 1 nvidia.com/gpu but has no plinth.io/allocation-id label"
    r = wait(lambda: (lambda s, b: (s == 403, (s, b)))(
        *kube.call("POST", "/api/v1/namespaces/ml/pods", pod("gpu-unlabelled", 1))), 60)
    ok(r[0] and r[1][1].get("message", "").startswith(DENIED + reason),
       f"API server 403 through the chart's webhook: unlabelled GPU pod in team namespace ml: '{reason}'",
       (r[1], daemon.log_tail()))
    st, b = kube.call("GET", "/api/v1/namespaces/ml/pods/gpu-unlabelled")
    ok(st == 404, "... and the pod does not exist", st)
    st, b = kube.call("POST", "/api/v1/namespaces/ml/pods", pod("cpu-only", 0))
    ok(st == 201, "a pod without GPUs in ml is admitted", (st, b))
    st, b = kube.call("POST", "/api/v1/namespaces/scratch/pods", pod("gpu-scratch", 1))
    ok(st == 201, "a GPU pod in a namespace without plinth.io/team is not sent to the webhook", (st, b))

    r = helm("uninstall", "plinth", "-n", "plinth")
    ok(r.returncode == 0, "helm uninstall plinth", r.stderr)
    r = wait(lambda: (lambda s, b: (s == 201, (s, b)))(
        *kube.call("POST", "/api/v1/namespaces/ml/pods?dryRun=All", pod("gpu-after", 1))), 60)
    ok(r[0], "after helm uninstall the same GPU pod is admitted: the refusal was the chart's webhook", r[1])
    st, b = kube.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/plinth-plinth-controller")
    ok(st == 404, "helm uninstall removed the cluster-scoped RBAC", st)
    # The chart-generated CA, installed for real, and kept by `helm upgrade`
    # (lookup of the existing Secret). Its webhook matches no namespace here.
    gen_values = os.path.join(tmp, "gen-values.yaml")
    with open(gen_values, "w") as f:
        yaml.safe_dump({"controller": {"enabled": False},
                        "webhook": {"namespaceSelector": {"matchLabels": {"plinth.io/helm-test": "none"}}}}, f)
    secret_path = "/api/v1/namespaces/plinth-gen/secrets/gen-plinth-webhook-tls"
    vwc_path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/plinth-gen-gen-plinth-gpu-allocations"

    def tls_state():
        st1, sec = kube.call("GET", secret_path)
        st2, vwc = kube.call("GET", vwc_path)
        if st1 != 200 or st2 != 200:
            return None
        return sec["data"], vwc["webhooks"][0]["clientConfig"]
    r = helm("install", "gen", CHART, "-n", "plinth-gen", "--create-namespace", "-f", gen_values)
    ok(r.returncode == 0, "helm install gen (chart-generated webhook CA)", r.stderr[-2000:])
    ok("serves only POST /v1/admission/review, without a token" in r.stdout
       and "networkPolicy.webhookFrom" in r.stdout,
       "NOTES: the webhook port serves only the review, without a token; limit it with webhookFrom",
       r.stdout[-1500:])
    _cleanups.append(lambda: helm("uninstall", "gen", "-n", "plinth-gen"))
    first = tls_state()
    ok(first is not None and first[0]["ca.crt"] == first[1].get("caBundle")
       and first[1].get("service", {}).get("name") == "gen-plinth-webhook",
       "installed: generated TLS Secret, its CA is the webhook's caBundle, clientConfig to the Service",
       first and first[1])
    r = helm("upgrade", "gen", CHART, "-n", "plinth-gen", "-f", gen_values)
    ok(r.returncode == 0, "helm upgrade gen", r.stderr[-2000:])
    ok(first is not None and tls_state() == first,
       "helm upgrade keeps the generated CA, certificate and caBundle (no new CA on every upgrade)")
    r = helm("uninstall", "gen", "-n", "plinth-gen")
    ok(r.returncode == 0 and kube.call("GET", vwc_path)[0] == 404, "helm uninstall gen", r.stderr)
    ok(daemon.stop() == 0, "the daemon stops on SIGTERM with status 0", daemon.log_tail(20))


run(main)
