#!/usr/bin/env python3
"""tests/jobs/test_jobs.py - the self-service job flow against real neighbours.

Starts a real MLflow server (tools/mlflow-start.sh), a real bare git
repository served by `git daemon` (so server-side hooks run), and the real
daemon; then checks what POST /v1/jobs and `plinth submit` create: the
allocation, the registered model and its tags read back through MLflow's
REST API, and the manifests cloned from the repository and validated against
the official Kubernetes Job and Argo CD Application schemas
(tests/schema/validate.mjs).  Failure paths: MLflow down, the remote
rejecting the push, a taken directory; each must cancel the allocation,
leave nothing reserved and no stray commit.  Prints TAP.

Usage: test_jobs.py PLINTH_BINARY
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLINTH = sys.argv[1]
ADMIN = "plt_jobs_admin_token_0123456789abcdefghij"
T = tempfile.mkdtemp(prefix="plinth-jobs.")
procs = []
daemons = []  # (name, Popen) of each plinth daemon
n = 0
failed = 0


def ok(cond, desc, info=""):
    global n, failed
    n += 1
    if cond:
        print(f"ok {n} - {desc}")
    else:
        failed += 1
        print(f"not ok {n} - {desc}")
        for line in str(info).splitlines()[:40]:
            print(f"# {line}")
    sys.stdout.flush()
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(base, method, path, body=None, token=ADMIN, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None, raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw), raw
        except ValueError:
            return e.code, None, raw


def git(*args, check=True):
    r = subprocess.run(["git", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"git {args}: {r.stderr}")
    return r.stdout.strip()


def start_daemon(name, env_extra):
    data = os.path.join(T, name)
    os.makedirs(data, exist_ok=True)
    ready = os.path.join(data, "ready")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "PLINTH_GITOPS_REMOTE", "PLINTH_DATABASE_URL",
                        "PLINTH_GITOPS_REPO_URL")}
    env.update({"PLINTH_ADMIN_TOKEN": ADMIN}, **env_extra)
    p = subprocess.Popen([PLINTH, "serve", "--listen", "127.0.0.1:0", "--data", data,
                          "--ready-file", ready], env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(data, "stderr.log"), "w"))
    procs.append(p)
    daemons.append((name, p))
    for _ in range(200):
        if os.path.exists(ready):
            base = open(ready).read().strip()
            if base:
                break
        if p.poll() is not None:
            raise RuntimeError(f"daemon {name} exited: " + open(os.path.join(data, "stderr.log")).read())
        time.sleep(0.05)
    # A team with a budget and a GPU type with capacity and an exact price.
    call(base, "PUT", "/v1/gpu-types/h100-80gb",
         {"name": "NVIDIA H100 80GB", "price_per_gpu_hour": "6.88", "capacity": 16})
    call(base, "PUT", "/v1/teams/nlp",
         {"display_name": "NLP", "budget": {"amount": "10000", "period": "monthly"}})
    return base, data


def team(base):
    return call(base, "GET", "/v1/teams/nlp")[1]


def mlflow_model(uri, name):
    q = urllib.parse.urlencode({"name": name})
    with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/registered-models/get?{q}", timeout=30) as r:
        m = json.loads(r.read())["registered_model"]
    return m, {t["key"]: t["value"] for t in m.get("tags", [])}


def validate(files):
    r = subprocess.run(["node", os.path.join(ROOT, "tests/schema/validate.mjs"), *files],
                       capture_output=True, text=True, cwd=os.path.join(ROOT, "tests/schema"))
    try:
        parsed = json.loads(r.stdout) if r.stdout else {}
    except ValueError:
        parsed = {}
    return r.returncode, parsed, r.stderr


def clone(remote, name):
    d = os.path.join(T, name)
    shutil.rmtree(d, ignore_errors=True)
    git("clone", "-q", remote, d)
    return d


def job_body(name, **kw):
    b = {"team": "nlp", "project": "llm", "name": name, "framework": "pytorch",
         "gpu_type": "h100-80gb", "gpu_count": 2, "max_runtime_hours": 1.5}
    b.update(kw)
    return b


def main():
    # --- neighbours ------------------------------------------------------------
    mport = free_port()
    mdir = os.path.join(T, "mlflow")
    os.makedirs(mdir)
    r = subprocess.run([os.path.join(ROOT, "tools/mlflow-start.sh"), mdir, str(mport)],
                       capture_output=True, text=True)
    if not ok(r.returncode == 0, "a real MLflow server starts", r.stderr):
        return
    procs.append(int(open(os.path.join(mdir, "mlflow.pid")).read()))
    mlflow = r.stdout.strip()

    repos = os.path.join(T, "repos")
    bare = os.path.join(repos, "gitops.git")
    git("init", "-q", "--bare", "--initial-branch=main", bare)
    gport = free_port()
    gd = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                           f"--base-path={repos}", "--listen=127.0.0.1", f"--port={gport}", repos],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(gd)
    remote = f"git://127.0.0.1:{gport}/gitops.git"
    for _ in range(100):
        if subprocess.run(["git", "ls-remote", remote], capture_output=True).returncode == 0:
            break
        time.sleep(0.1)

    base, data = start_daemon("main", {"MLFLOW_TRACKING_URI": mlflow, "PLINTH_GITOPS_REMOTE": remote})

    # --- the happy path ----------------------------------------------------------
    cmd = ["python", "train.py", "--note", 'x"\n- evil: true\n--- !!python/object {a: *b}']
    body = job_body("train-llm", command=cmd, model_name="llm-7b")
    st, res, raw = call(base, "POST", "/v1/jobs", body, headers={"Idempotency-Key": "job-1"})
    ok(st == 201, "POST /v1/jobs creates the job (201)", raw)
    if st != 201:
        return
    alloc = res["allocation"]
    ok(alloc["status"] == "approved" and alloc["estimated_cost"] in ("20.64", "20.640000"),
       "the allocation is approved at 2 x 6.88 x 1.5 = 20.64", alloc)
    ok(team(base)["reserved"] == "20.64", "the team has 20.64 reserved", team(base))
    ok(res.get("estimated_cost") == "20.64" and res.get("currency") == "USD",
       "the job's estimated cost comes with its currency", {k: res.get(k) for k in ("estimated_cost", "currency")})
    ok(res["mlflow"]["registered_model"] == "llm-7b" and
       res["mlflow"]["url"] == f"{mlflow}/#/models/llm-7b", "the response names the model and its URL", res["mlflow"])
    m, tags = mlflow_model(mlflow, "llm-7b")
    ok(tags.get("plinth.allocation_id") == alloc["id"] and tags.get("plinth.team") == "nlp" and
       tags.get("plinth.gpu_type") == "h100-80gb" and tags.get("plinth.gpu_count") == "2" and
       tags.get("plinth.estimated_cost") == "20.64" and tags.get("plinth.currency") == "USD" and
       tags.get("plinth.status") == "approved",
       "MLflow's REST API returns the model with the allocation's tags", tags)
    ok(res["gitops"]["path"] == "apps/nlp/train-llm" and len(res["gitops"]["commit"]) == 40,
       "the response names the path and the commit", res["gitops"])
    ok(res["argocd"]["application"] == "nlp-train-llm", "the response names the Argo CD application")

    c = clone(remote, "clone1")
    head = git("-C", c, "rev-parse", "HEAD")
    ok(head == res["gitops"]["commit"], "the remote's main is the reported commit", head)
    msg = git("-C", c, "log", "-1", "--format=%B")
    ok(alloc["id"] in msg and "nlp/train-llm" in msg and "estimated cost: 20.64 USD" in msg,
       "the commit message names the job, allocation and cost", msg)
    files = sorted(os.listdir(os.path.join(c, "apps/nlp/train-llm")))
    ok(files == ["application.yaml", "job.yaml"], "apps/nlp/train-llm holds job.yaml and application.yaml", files)
    jf, af = (os.path.join(c, "apps/nlp/train-llm", f) for f in ("job.yaml", "application.yaml"))
    rc, parsed, err = validate([jf, af])
    ok(rc == 0, "both manifests validate against the official Job and Application schemas", err)
    job, app = parsed.get(jf, {}), parsed.get(af, {})
    spec = job.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    ctr = (pod.get("containers") or [{}])[0]
    labels = job.get("metadata", {}).get("labels", {})
    ok(spec.get("activeDeadlineSeconds") == 5400 and spec.get("backoffLimit") == 2 and
       "ttlSecondsAfterFinished" not in spec, "activeDeadlineSeconds = 1.5 h, backoffLimit, no TTL", spec)
    ok(ctr.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") == 2 and
       ctr.get("resources", {}).get("requests", {}).get("nvidia.com/gpu") == 2, "GPU limits and requests", ctr)
    ok(labels.get("plinth.io/allocation-id") == alloc["id"] and labels.get("plinth.io/team") == "nlp" and
       labels.get("plinth.io/project") == "llm" and labels.get("app.kubernetes.io/managed-by") == "plinth" and
       spec.get("template", {}).get("metadata", {}).get("labels", {}).get("plinth.io/allocation-id") == alloc["id"],
       "Job and pod labels carry the allocation, team and project", labels)
    ok(ctr.get("command") == cmd, "the command survives YAML exactly (no injection)", ctr.get("command"))
    ok({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod.get("tolerations", []) and
       pod.get("nodeSelector") == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"} and
       pod.get("restartPolicy") == "Never", "toleration, node selector, restartPolicy", pod)
    env = {e["name"]: e["value"] for e in ctr.get("env", [])}
    ok(env.get("MLFLOW_TRACKING_URI") == mlflow and env.get("MLFLOW_EXPERIMENT_NAME") == "nlp-llm" and
       env.get("PLINTH_ALLOCATION_ID") == alloc["id"] and ctr.get("image", "").startswith("pytorch/pytorch:"),
       "env and the framework's default image", ctr)
    aspec = app.get("spec", {})
    ok(aspec.get("project") == "default" and aspec.get("source", {}).get("repoURL") == remote and
       aspec.get("source", {}).get("path") == "apps/nlp/train-llm" and
       aspec.get("destination", {}).get("namespace") == "nlp" and
       aspec.get("syncPolicy", {}).get("automated") == {"prune": True, "selfHeal": True} and
       "CreateNamespace=true" in aspec.get("syncPolicy", {}).get("syncOptions", []),
       "the Application: project, source, destination, automated prune/selfHeal, CreateNamespace", aspec)

    # --- idempotency ---------------------------------------------------------------
    st2, _, raw2 = call(base, "POST", "/v1/jobs", body, headers={"Idempotency-Key": "job-1"})
    ok(st2 == 201 and raw2 == raw, "the same key and body replay the first answer byte for byte")
    ok(git("ls-remote", remote, "refs/heads/main").split()[0] == head and team(base)["reserved"] == "20.64",
       "the replay made no commit and reserved nothing more")
    st3, res3, _ = call(base, "POST", "/v1/jobs", job_body("train-llm", gpu_count=1),
                        headers={"Idempotency-Key": "job-1"})
    ok(st3 == 422, "the same key with another body is 422", res3)
    st, res, raw = call(base, "GET", f"/v1/jobs/{res['id']}")
    ok(st == 200 and res["state"] == "created" and res["outcome"]["allocation"]["id"] == alloc["id"],
       "GET /v1/jobs/{id} reports the outcome", raw)

    # --- bad input changes nothing ---------------------------------------------------
    before = team(base)
    commits = git("ls-remote", remote, "refs/heads/main")
    for desc, b in [
        ("a name that is not a DNS label", job_body("Train_1")),
        ("a path-traversal name", job_body("../etc")),
        ("an unknown framework", job_body("t1", framework="caffe")),
        ("an image with a space", job_body("t1", image="a b")),
        ("a custom framework without image", job_body("t1", framework="custom")),
        ("a model name with a slash", job_body("t1", model_name="a/b")),
        ("a command that is not strings", job_body("t1", command=["a", 1])),
        ("an overlong command", job_body("t1", command=["x" * 5000])),
        ("an unknown field", job_body("t1", priority=1)),
        ("zero GPUs", job_body("t1", gpu_count=0)),
    ]:
        st, res, _ = call(base, "POST", "/v1/jobs", b)
        ok(st == 422 and res.get("errors"), f"{desc}: 422 with errors", res)
    ok(team(base)["reserved"] == before["reserved"] and git("ls-remote", remote, "refs/heads/main") == commits,
       "bad input reserved nothing and committed nothing")

    # --- over budget: the allocation is refused before any neighbour is called ----------
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("too-big", gpu_count=16, max_runtime_hours=168),
                        headers={"Idempotency-Key": "big"})
    ok(st == 409 and res.get("type", "").endswith("/budget-exceeded") and res.get("step") == "allocate",
       "over budget: 409 budget-exceeded at the allocate step", raw)
    ok(call(base, "POST", "/v1/jobs", job_body("too-big", gpu_count=16, max_runtime_hours=168),
            headers={"Idempotency-Key": "big"})[2] == raw, "the refusal replays with the same key")
    ok(team(base)["reserved"] == before["reserved"] and git("ls-remote", remote, "refs/heads/main") == commits,
       "a refusal reserved nothing and committed nothing")
    try:
        mlflow_model(mlflow, "nlp-too-big")
        ok(False, "a refused job registers no model")
    except urllib.error.HTTPError as e:
        ok(e.code == 404, "a refused job registers no model", e.code)

    # --- a team with several namespaces: the Job runs in one of them ------------------------
    st, _, raw = call(base, "PUT", "/v1/teams/speech", {
        "display_name": "Speech", "budget": {"amount": "1000", "period": "monthly"},
        "namespaces": ["speech-prod", "speech-dev"]})
    ok(st == 201, "a team with two namespaces", raw)
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("asr", team="speech", gpu_count=1))
    ok(st == 201 and res["argocd"]["job_namespace"] == "speech-dev",
       "no namespace asked: the team's first (it owns none named after it)", raw)
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("asr-prod", team="speech", gpu_count=1,
                                                           namespace="speech-prod"))
    ok(st == 201 and res["argocd"]["job_namespace"] == "speech-prod", "the namespace asked for", raw)
    if st == 201:
        d = clone(remote, "ns-clone")
        job = open(os.path.join(d, "apps/speech/asr-prod/job.yaml")).read()
        app = open(os.path.join(d, "apps/speech/asr-prod/application.yaml")).read()
        ok('namespace: "speech-prod"' in job and 'namespace: "speech-prod"' in app,
           "the Job and the Application's destination are in that namespace", job + app)
    spent = call(base, "GET", "/v1/teams/speech")[1]["reserved"]
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("asr-x", team="speech", gpu_count=1,
                                                           namespace="nlp"))
    ok(st == 422 and res["errors"][0]["field"] == "namespace" and "speech-dev,speech-prod" in res["errors"][0]["message"],
       "another team's namespace: 422 naming the team's namespaces", raw)
    ok(call(base, "GET", "/v1/teams/speech")[1]["reserved"] == spent, "and nothing is reserved")

    # --- the name is taken: 409 before anything is allocated ----------------------------
    nallocs = len(call(base, "GET", "/v1/allocations?team=nlp")[1]["items"])
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("train-llm", gpu_count=1))
    ok(st == 409 and res.get("type", "").endswith("/job-exists") and res.get("name") == "train-llm" and
       res.get("allocation_id") == alloc["id"] and res.get("allocation_status") == "approved" and
       "exists" in res.get("detail", ""),
       "a second job with the same name: 409 job-exists naming the job's allocation", raw)
    ok(len(call(base, "GET", "/v1/allocations?team=nlp")[1]["items"]) == nallocs and
       team(base)["reserved"] == "20.64", "it allocated nothing (no allocation, nothing reserved)", team(base))

    # --- the directory is taken outside plinth: 409 at gitops, allocation cancelled --------
    c = clone(remote, "clone-manual")
    os.makedirs(os.path.join(c, "apps/nlp/manual"))
    with open(os.path.join(c, "apps/nlp/manual/README"), "w") as f:
        f.write("put here by hand\n")
    git("-C", c, "add", "-A")
    git("-C", c, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "manual")
    git("-C", c, "push", "-q", "origin", "main")
    st, res, raw = call(base, "POST", "/v1/jobs", job_body("manual", gpu_count=1))
    ok(st == 409 and res.get("step") == "gitops" and res.get("allocation_status") == "cancelled",
       "a directory taken by hand: 409 naming gitops", raw)
    if res and res.get("allocation_id"):
        a = call(base, "GET", f"/v1/allocations/{res['allocation_id']}")[1]
        ok(a["status"] == "cancelled", "its allocation is cancelled", a)
    ok(team(base)["reserved"] == "20.64", "nothing more is reserved", team(base))

    # --- the remote rejects the push ------------------------------------------------------
    hook = os.path.join(bare, "hooks", "pre-receive")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\necho 'rejected by policy' >&2\nexit 1\n")
    os.chmod(hook, 0o755)
    before_head = git("ls-remote", remote, "refs/heads/main").split()[0]
    b = job_body("train-rejected", model_name="rejected-model")
    st, res, raw = call(base, "POST", "/v1/jobs", b, headers={"Idempotency-Key": "job-rej"})
    ok(st == 502 and res.get("step") == "gitops" and "gitops" in res.get("detail", "")
       and res.get("type", "").endswith("/step-failed"), "a rejected push: 502 naming gitops", raw)
    aid = (res or {}).get("allocation_id", "")
    ok(call(base, "GET", f"/v1/allocations/{aid}")[1].get("status") == "cancelled",
       "the allocation is cancelled")
    ok(team(base)["reserved"] == "20.64", "nothing stays reserved", team(base))
    ok(git("ls-remote", remote, "refs/heads/main").split()[0] == before_head, "the remote is unchanged")
    local = git("--git-dir", os.path.join(data, "gitops-work"), "rev-parse", "refs/heads/main")
    ok(local == before_head, "no stray commit: the daemon's branch is back at the remote's", local)
    _, tags = mlflow_model(mlflow, "rejected-model")
    ok(tags.get("plinth.status") == "cancelled" and tags.get("plinth.allocation_id") == aid,
       "the MLflow model is tagged cancelled", tags)
    st2, _, raw2 = call(base, "POST", "/v1/jobs", b, headers={"Idempotency-Key": "job-rej"})
    ok(st2 == 502 and raw2 == raw, "a retry with the same key reports the same outcome")
    os.unlink(hook)

    # --- the CLI ------------------------------------------------------------------------------
    jf = os.path.join(T, "job.yaml")
    with open(jf, "w") as f:
        f.write("# a job file\nteam: nlp\nproject: llm\nname: cli-job\nframework: jax\n"
                "command: [python, -m, train, '--lr=0.1']\ngpu_type: h100-80gb\ngpu_count: 1\n"
                "max_runtime_hours: 2\n")
    env = dict(os.environ, PLINTH_URL=base, PLINTH_TOKEN=ADMIN)
    r = subprocess.run([PLINTH, "submit", "--idempotency-key", "cli-1", jf], capture_output=True, text=True, env=env)
    ok(r.returncode == 0 and "apps/nlp/cli-job/" in r.stdout and "nlp-cli-job" in r.stdout and
       "13.76" in r.stdout and f"{mlflow}/#/models/nlp-cli-job" in r.stdout,
       "plinth submit prints the allocation, model URL, path and application", r.stdout + r.stderr)
    _, tags = mlflow_model(mlflow, "nlp-cli-job")
    ok(tags.get("plinth.estimated_cost") == "13.76", "the CLI's job is in MLflow", tags)
    bigf = os.path.join(T, "big.yaml")
    with open(bigf, "w") as f:
        f.write("team: nlp\nproject: llm\nname: cli-big\nframework: jax\ngpu_type: h100-80gb\n"
                "gpu_count: 16\nmax_runtime_hours: 168\n")
    r = subprocess.run([PLINTH, "submit", bigf], capture_output=True, text=True, env=env)
    ok(r.returncode == 1 and "Fits now: " in r.stderr and "GPUs for 168 h" in r.stderr and
       "Budget renews " in r.stderr and "Ask: " in r.stderr,
       "plinth submit over budget says what fits, when the budget renews and whom to ask", r.stderr)
    with open(jf, "a") as f:
        f.write("colour: blue\n")
    r = subprocess.run([PLINTH, "submit", jf], capture_output=True, text=True, env=env)
    ok(r.returncode == 2 and "colour" in r.stderr, "an unknown key in the job file is a usage error", r.stderr)
    with open(jf, "w") as f:
        f.write("team: [unclosed\n")
    r = subprocess.run([PLINTH, "submit", jf], capture_output=True, text=True, env=env)
    ok(r.returncode == 2, "a job file that is not YAML is a usage error", r.stderr)
    c = clone(remote, "clone2")
    allf = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(c, "apps")) for f in fs
            if f.endswith(".yaml")]  # (apps/nlp/manual/README was put there by hand)
    rc, parsed, err = validate(allf + [os.path.join(ROOT, "deploy/argocd/applicationset.yaml")])
    ok(rc == 0 and len(allf) == 8, f"every manifest in the repository ({len(allf)}) and the ApplicationSet validate", err)

    # --- MLflow down ------------------------------------------------------------------------------
    dead = free_port()
    base2, data2 = start_daemon("nomlflow", {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{dead}"})
    st, res, raw = call(base2, "POST", "/v1/jobs", job_body("train-2"))
    ok(st == 502 and res.get("step") == "mlflow" and res.get("detail", "").startswith("mlflow:"),
       "MLflow down: 502 naming mlflow", raw)
    a = call(base2, "GET", f"/v1/allocations/{(res or {}).get('allocation_id', 'x')}")[1] or {}
    ok(a.get("status") == "cancelled", "the allocation is cancelled", a)
    ok(team(base2)["reserved"] == "0.00", "nothing is reserved", team(base2))
    ok(git("--git-dir", os.path.join(data2, "gitops.git"), "for-each-ref") == "",
       "nothing was committed to the embedded repository")

    # --- no MLflow configured, the embedded bare repository ----------------------------------------
    base3, data3 = start_daemon("embedded", {})
    st, res, raw = call(base3, "POST", "/v1/jobs", job_body("train-3", framework="tensorflow"))
    ok(st == 201 and res["mlflow"].get("skipped") is True and "MLFLOW_TRACKING_URI" in res["mlflow"]["reason"],
       "unset MLFLOW_TRACKING_URI: the step is skipped and the response says so", raw)
    c = clone(os.path.join(data3, "gitops.git"), "clone3")
    jf3 = os.path.join(c, "apps/nlp/train-3/job.yaml")
    rc, parsed, err = validate([jf3, os.path.join(c, "apps/nlp/train-3/application.yaml")])
    ok(rc == 0 and git("-C", c, "rev-parse", "HEAD") == res["gitops"]["commit"],
       "the embedded bare repository holds valid manifests at the reported commit", err)
    env3 = {e["name"] for e in parsed.get(jf3, {}).get("spec", {}).get("template", {}).get("spec", {})
            .get("containers", [{}])[0].get("env", [])}
    ok("MLFLOW_TRACKING_URI" not in env3 and "PLINTH_ALLOCATION_ID" in env3, "no tracking URI env without MLflow", env3)
    log3 = open(os.path.join(data3, "stderr.log")).read()
    ok("--gitops-repo-url" in log3 and os.path.join(data3, "gitops.git") in log3,
       "without --gitops-repo-url a local repoURL is warned about at start", log3[-2000:])

    # --- --gitops-repo-url: the Application names the URL Argo CD clones --------------------------
    url = "https://git.example.com/platform/gitops.git"
    base4, data4 = start_daemon("repourl", {"PLINTH_GITOPS_REPO_URL": url})
    st, res, raw = call(base4, "POST", "/v1/jobs", job_body("train-4"))
    ok(st == 201 and res["gitops"]["repository"] == url, "the job answer names the repository URL", raw)
    c = clone(os.path.join(data4, "gitops.git"), "clone4")
    af4 = os.path.join(c, "apps/nlp/train-4/application.yaml")
    rc, parsed, err = validate([af4])
    ok(rc == 0 and parsed.get(af4, {}).get("spec", {}).get("source", {}).get("repoURL") == url,
       "the Application's repoURL is PLINTH_GITOPS_REPO_URL, not a path of the daemon's host", parsed.get(af4))
    ok("--gitops-repo-url" not in open(os.path.join(data4, "stderr.log")).read(),
       "no warning when the repository URL is set")

    # --- clean shutdown (under ASan this is also the leak check) ---------------------------------
    for name, p in daemons:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
        log = open(os.path.join(T, name, "stderr.log")).read()
        ok(rc == 0, f"the daemon stops cleanly on SIGTERM (exit {rc})", log[-3000:])


try:
    main()
except Exception as e:  # a crash of the harness is a failure, never a skip
    ok(False, "the harness ran to the end", repr(e))
finally:
    for p in procs:
        try:
            if isinstance(p, int):  # mlflow: its whole process group
                os.killpg(p, signal.SIGTERM)
            else:
                p.terminate()
                p.wait(timeout=10)
        except Exception:
            pass
    shutil.rmtree(T, ignore_errors=True)
print(f"1..{n}")
sys.exit(1 if failed else 0)
