#!/usr/bin/env python3
"""
tests/schemathesis/fuzz_api.py - property-based API fuzzing of the real
daemon, generated from docs/openapi.json by schemathesis (issue 11, "Also").

Usage: fuzz_api.py sqlite|pg

It starts `plinth serve` on a random loopback port against a fresh data
directory (sqlite) or a fresh PostgreSQL schema in PLINTH_TEST_PG_URL (pg;
a missing URL is a failure, never a skip), seeds teams, a GPU type, tokens
and allocations so that path parameters name real objects, then runs
`schemathesis run` once per role (admin, finance, member bound to one team)
with a fixed seed and a bounded number of examples per operation.  Checks:
no 5xx, documented status codes, content types, response schemas and
headers, and no 2xx for a request the document forbids (negative data).
Every failure is a failure of this test.

Output is TAP: one line per role with the number of generated requests
and failures, and a closing "N passed, N failed" line.  Environment:
PLINTH_BIN (required), OPENAPI_DOC, SCHEMATHESIS_MAX_EXAMPLES (default 50),
SCHEMATHESIS_SEED (default 20261206).  It touches nothing outside its own
temporary directory and PostgreSQL schema.
"""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
from plinthtest import Daemon, Tap  # noqa: E402

# The checks every generated request is held to (schemathesis names).
CHECKS = [
    "not_a_server_error",            # zero 5xx
    "status_code_conformance",       # only documented statuses
    "content_type_conformance",      # the documented media type
    "response_schema_conformance",   # bodies valid against the documented schema
    "response_headers_conformance",  # documented headers present and valid
    "negative_data_rejection",       # nothing the schema forbids is accepted
    "ignored_auth",                  # no token or a wrong one: 401, never served
    "missing_required_header",       # e.g. no Authorization: refused
    "unsupported_method",            # an undocumented method: 405, not served
    "allow_header_conformance",      # a 405 names the allowed methods
    "use_after_free",                # a revoked token stays revoked
    "ensure_resource_availability",  # what was created can be read back
]
# Checks left out, with the reason:
#  - positive_data_acceptance: a schema-valid request is legitimately refused
#    by rules the document cannot express (409 over budget or capacity, 404
#    for a team that does not exist, 403 for a member's other team).
#  - object_level_authorization: compares answers across tokens of one run;
#    each role here has a run of its own, and tests/openapi and
#    tests/integration check every endpoint x role as documented.
#  - max_response_time: timing assertions flake on a shared 2-core machine.


def pg_fresh_schema(base):
    """A new schema in the test database: (url with search_path, schema)."""
    tag = "st_" + secrets.token_hex(6)
    subprocess.run(["psql", base, "-qAtX", "-v", "ON_ERROR_STOP=1",
                    "-c", f"CREATE SCHEMA {tag}"], check=True, capture_output=True)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{tag}", tag


def pg_drop_schema(base, tag):
    subprocess.run(["psql", base, "-qAtX", "-c", f"DROP SCHEMA {tag} CASCADE"],
                   capture_output=True)


def call(base, token, method, path, body=None, headers=None):
    h = {"Authorization": "Bearer " + token}
    h.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode("utf-8", "replace")


def seed(tap, base, admin):
    """Objects for the path parameters; returns {name: value} or None."""
    steps = []

    def must(method, path, body=None, expect=(200, 201), headers=None):
        st, out = call(base, admin, method, path, body, headers)
        steps.append(f"{method} {path} -> {st}")
        if st not in expect:
            raise RuntimeError(f"seed: {method} {path} answered {st}: {out}")
        return out

    try:
        must("PUT", "/v1/gpu-types/fuzz-gpu",
             {"name": "Fuzz GPU", "price_per_gpu_hour": "1.25", "capacity": 100000})
        for team in ("alpha", "beta"):
            must("PUT", f"/v1/teams/{team}",
                 {"display_name": team.title(),
                  "budget": {"amount": "1000000000", "period": "monthly"}})
        fin = must("POST", "/v1/tokens", {"name": "fuzz-finance", "role": "finance"})
        mem = must("POST", "/v1/tokens",
                   {"name": "fuzz-member", "role": "member", "teams": ["alpha"]})
        spare = must("POST", "/v1/tokens", {"name": "fuzz-spare", "role": "service"})
        allocs = []
        for i in range(3):
            a = must("POST", "/v1/allocations",
                     {"team": "alpha", "project": "fuzz", "gpu_type": "fuzz-gpu",
                      "gpu_count": 1, "max_runtime_hours": 2, "purpose": f"seed {i}"},
                     headers={"Idempotency-Key": f"fuzz-seed-{i}"})
            allocs.append(a["id"])
        must("POST", f"/v1/allocations/{allocs[1]}/start", {})
    except (RuntimeError, KeyError, TypeError) as e:
        tap.ok(False, "seed teams, GPU type, tokens and allocations",
               "\n".join(steps + [str(e)]))
        return None
    tap.ok(True, "seed teams, GPU type, tokens and allocations")
    ids = {"finance": fin["token"], "member": mem["token"], "spare_token_id": spare["id"],
           "allocations": allocs, "job": "job_notseeded"}
    # A job of its own step: when POST /v1/jobs fails, the rest is still fuzzed.
    try:
        ids["job"] = must("POST", "/v1/jobs",
                          {"team": "alpha", "project": "fuzz", "name": "seed-job",
                           "framework": "pytorch", "gpu_type": "fuzz-gpu", "gpu_count": 1,
                           "max_runtime_hours": 1},
                          headers={"Idempotency-Key": "fuzz-seed-job"})["id"]
        tap.ok(True, "seed a job (POST /v1/jobs)")
    except (RuntimeError, KeyError, TypeError) as e:
        tap.ok(False, "seed a job (POST /v1/jobs)", str(e))
    return ids


def config_toml(path, base, token, ids):
    """A schemathesis.toml: base URL, the role's token, and dictionaries of
    real names and ids that path parameters and body fields take most of the
    time (the rest stays generated, so unknown names are tried too)."""
    q = json.dumps
    dicts = {
        "teams": ["alpha", "beta"],
        "gpus": ["fuzz-gpu", "h100-80gb"],
        "allocations": ids["allocations"],
        "jobs": [ids["job"]],
        # the daemon takes at most 6 decimals of an hour, which JSON Schema
        # cannot say without float rounding (multipleOf): real values
        "hours": [0.000001, 0.5, 1, 1.5, 24, 168, 99999.999999],
        "gpu_counts": [1, 2, 8],
    }
    ops = [
        ("/v1/teams/{team}", "path.team", "teams"),
        ("/v1/gpu-types/{id}", "path.id", "gpus"),
        ("/v1/allocations/{id}", "path.id", "allocations"),
        ("/v1/allocations/{id}/start", "path.id", "allocations"),
        ("/v1/allocations/{id}/complete", "path.id", "allocations"),
        ("/v1/allocations/{id}/cancel", "path.id", "allocations"),
        ("/v1/jobs/{id}", "path.id", "jobs"),
    ]
    lines = [f"base-url = {q(base)}",
             "request-timeout = 30.0",
             f"headers = {{ Authorization = {q('Bearer ' + token)} }}",
             "",
             "[parameters]",
             '"body.team" = { dictionary = "teams", probability = 0.8 }',
             '"body.gpu_type" = { dictionary = "gpus", probability = 0.8 }',
             '"query.team" = { dictionary = "teams", probability = 0.8 }',
             '"body.max_runtime_hours" = { dictionary = "hours", probability = 0.6 }',
             '"body.gpu_count" = { dictionary = "gpu_counts", probability = 0.5 }',
             ""]
    for name, values in dicts.items():
        lines += [f"[dictionaries.{name}]", f"values = {q(values)}", ""]
    for p, key, name in ops:
        lines += ["[[operations]]", f"include-path = {q(p)}",
                  f"parameters = {{ {q(key)} = {{ dictionary = {q(name)}, probability = 0.8 }} }}",
                  ""]
    # DELETE /v1/tokens/{id} always names the spare token: schemathesis feeds
    # it ids listed by GET /v1/tokens, and revoking the token of the running
    # role would turn the rest of its run into 401s.  Unknown ids are tried by
    # tests/openapi.
    lines += ["[[operations]]", 'include-path = "/v1/tokens/{id}"', 'include-method = "DELETE"',
              f"parameters = {{ \"path.id\" = {q(ids['spare_token_id'])} }}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def count_report(path):
    """(generated test cases, failures + errors) from schemathesis' JSON report."""
    with open(path) as f:
        rep = json.load(f)
    failed = rep["test_cases"]["unique_failures"] + len(rep.get("errors", []))
    return rep["test_cases"]["generated"], failed


def fuzz_role(tap, st_python, doc, tmp, base, role, token, ids, backend):
    work = os.path.join(tmp, f"st-{role}")
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "schemathesis.toml")
    config_toml(cfg, base, token, ids)
    report = os.path.join(work, "report.json")
    args = [os.path.join(os.path.dirname(st_python), "schemathesis"),
            "--config-file", cfg, "run", doc,
            "--checks", ",".join(CHECKS),
            "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"),
            "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261206"),
            "--workers", "1",
            "--generation-database", "none",
            "--continue-on-failure",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--report", "json,har", "--report-json-path", report,
            "--report-har-path", os.path.join(work, "requests.har"),
            "--no-color", "--output-truncate", "false"]
    t0 = time.monotonic()
    p = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=1800)
    secs = time.monotonic() - t0
    out = p.stdout + p.stderr
    with open(os.path.join(work, "output.txt"), "w") as f:
        f.write(out)
    try:
        sent, failures = count_report(report)
    except (OSError, ValueError, KeyError) as e:
        sent, failures = 0, 1
        out += f"\ncannot read the JSON report {report}: {e}"
    desc = (f"schemathesis {backend} {role}: {sent} generated requests, "
            f"{failures} failures, exit {p.returncode}, {secs:.0f} s")
    good = p.returncode == 0 and not failures and sent > 0
    tap.ok(good, desc, "" if good else out[-20000:])
    return sent, failures


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("sqlite", "pg"):
        print("usage: fuzz_api.py sqlite|pg", file=sys.stderr)
        return 2
    backend = sys.argv[1]
    tap = Tap()
    binary = os.environ.get("PLINTH_BIN", os.path.join(ROOT, "build", "plinth"))
    doc = os.environ.get("OPENAPI_DOC", os.path.join(ROOT, "docs", "openapi.json"))
    st_python = sys.executable
    pg_base = os.environ.get("PLINTH_TEST_PG_URL", "")
    db_url = schema = None
    if backend == "pg":
        if not tap.ok(bool(pg_base), "PLINTH_TEST_PG_URL is set",
                      "run through tools/run-tests.sh or eval \"$(tools/pg-start.sh)\""):
            return finish(tap)
        try:
            db_url, schema = pg_fresh_schema(pg_base)
        except subprocess.CalledProcessError as e:
            tap.ok(False, "a fresh PostgreSQL schema", e.stderr)
            return finish(tap)
    totals = {}
    keep = os.environ.get("SCHEMATHESIS_KEEP")  # debugging: keep the work files there
    with tempfile.TemporaryDirectory(prefix="plinth-st-") as scratch:
        tmp = keep or scratch
        os.makedirs(tmp, exist_ok=True)
        admin = "adm_" + secrets.token_hex(20)
        daemon = None
        try:
            # --max-runtime-hours: the largest limit a deployment can set, as
            # documented, so long runs (big sums of money) are accepted and
            # fuzzed too.
            args = ["--max-runtime-hours", "100000"]
            if db_url:
                args += ["--database-url", db_url]
            daemon = Daemon(binary, admin, tmp=tmp, args=args, wait=60)
            ids = seed(tap, daemon.base, admin)
            if ids is not None:
                # Admin last: its PUTs change the budgets and capacities the
                # member's allocations are decided against.
                for role, token in (("member", ids["member"]), ("finance", ids["finance"]),
                                    ("admin", admin)):
                    totals[role] = fuzz_role(tap, st_python, doc, tmp, daemon.base, role,
                                             token, ids, backend)
        except RuntimeError as e:
            tap.ok(False, "the daemon starts", str(e))
        finally:
            if daemon is not None:
                rc = daemon.stop()
                tap.ok(rc == 0, "SIGTERM stops the daemon with exit status 0",
                       f"exit status {rc}\n{daemon.log_tail()}")
                if tap.failed:
                    tap.note("daemon log (tail):\n" + daemon.log_tail())
            if schema:
                pg_drop_schema(pg_base, schema)
    for role, (sent, failed) in totals.items():
        tap.note(f"{backend} {role}: {sent} requests, {failed} failures")
    return finish(tap)


def finish(tap):
    tap.note(f"schemathesis: {tap.n - tap.failed} passed, {tap.failed} failed")
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
