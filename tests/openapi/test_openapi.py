#!/usr/bin/env python3
"""
tests/openapi/test_openapi.py - keeps docs/openapi.json true to the daemon.

It validates the document (openapi-spec-validator), starts the real daemon on
a random port against a fresh data directory, and makes requests that
exercise every operation and (nearly) every documented status.  Each real
response must have a status documented for its operation, the documented
media type, and a body that validates (JSON Schema 2020-12, formats checked)
against the documented schema.  Bodies the server accepts must also be
accepted by the documented request schema, and selected bodies the server
refuses must be refused by it too.  At the end every operation and every
documented status other than 500/503 must have been seen.

Output is TAP.  Environment: PLINTH_BIN (the binary, required),
OPENAPI_DOC (default: docs/openapi.json next to this tree).  It must never
touch anything outside its own temporary directory.
"""
import http.client
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from plinthtest import Daemon, Tap  # noqa: E402

DOC_URI = "urn:plinth:openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
NOT_EXERCISABLE = {"500", "502", "503"}  # internal errors, a job neighbour failed (tests/jobs), database down


class Doc:
    """The OpenAPI document with $ref resolution for JSON Schema validation."""

    def __init__(self, doc):
        self.doc = doc
        resource = DRAFT202012.create_resource(doc)
        self.registry = Registry().with_resource(DOC_URI, resource)

    def validator(self, pointer):
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$ref": DOC_URI + "#" + pointer}
        return Draft202012Validator(schema, registry=self.registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)

    def errors(self, pointer, instance):
        v = self.validator(pointer)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in v.iter_errors(instance)]

    def operations(self):
        for path, item in self.doc["paths"].items():
            for m in METHODS:
                if m in item:
                    yield path, m

    def response(self, path, method, status):
        """(json-pointer, response object) for a documented status, or (None, None)."""
        responses = self.doc["paths"][path][method]["responses"]
        r = responses.get(str(status))
        if r is None:
            return None, None
        ptr = "/paths/" + esc(path) + "/" + method + "/responses/" + str(status)
        if "$ref" in r:
            ptr = r["$ref"][1:]
            r = self.resolve(r["$ref"])
        return ptr, r

    def resolve(self, ref):
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def esc(s):
    return s.replace("~", "~0").replace("/", "~1")


class Client:
    def __init__(self, tap, doc, base, admin):
        self.tap = tap
        self.doc = doc
        self.base = base
        self.admin = admin
        self.exercised = set()  # (path, method)
        self.seen = set()  # (path, method, status)

    def url(self, path, params=None, query=None):
        p = path
        for k, v in (params or {}).items():
            p = p.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
        if query:
            p += "?" + urllib.parse.urlencode(query)
        return self.base + p

    def raw(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    def call(self, path, method, params=None, query=None, body=None, raw=None,
             ctype="application/json", token="admin", headers=None, expect=None,
             doc_rejects=False, desc=None):
        """Sends one request to a documented operation and checks the response
        against the document.  Returns (status, headers, parsed JSON or None)."""
        method = method.lower()
        tap = self.tap
        op = self.doc.doc["paths"].get(path, {}).get(method)
        label = f"{method.upper()} {path}" + (f" [{desc}]" if desc else "")
        if op is None:
            tap.ok(False, f"{label}: operation is documented")
            return None, None, None
        h = dict(headers or {})
        if token == "admin":
            token = self.admin
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and ctype is not None:
            h["Content-Type"] = ctype
        status, rh, payload = self.raw(method.upper(), self.url(path, params, query), data, h)
        self.exercised.add((path, method))
        self.seen.add((path, method, str(status)))
        label += f" -> {status}"
        problems = []
        if expect is not None and status != expect:
            problems.append(f"expected status {expect}, got {status}: "
                            f"{payload[:400].decode('utf-8', 'replace')}")
        ptr, resp = self.doc.response(path, method, status)
        parsed = None
        if resp is None:
            problems.append(f"status {status} is not documented for {method.upper()} {path} "
                            f"(documented: {sorted(op['responses'])})")
        else:
            content = resp.get("content")
            got_ct = (rh.get("Content-Type") or "").split(";")[0].strip()
            if not content:
                if payload:
                    problems.append(f"documented without a body, got {len(payload)} bytes")
            elif got_ct not in content:
                problems.append(f"Content-Type {got_ct!r} is not documented "
                                f"({sorted(content)})")
            elif not got_ct.endswith("json"):
                if not payload:  # text/csv, text/plain: a non-empty body is enough here
                    problems.append(f"empty {got_ct} body")
            else:
                try:
                    parsed = json.loads(payload)
                except ValueError as e:
                    problems.append(f"body is not JSON: {e}")
                else:
                    errs = self.doc.errors(f"{ptr}/content/{esc(got_ct)}/schema", parsed)
                    problems += [f"response schema: {e}" for e in errs[:10]]
        if status == 401 and "Bearer" not in (rh.get("WWW-Authenticate") or ""):
            problems.append("401 without WWW-Authenticate: Bearer")
        if body is not None and "requestBody" in op:
            rptr = ("/paths/" + esc(path) + "/" + method +
                    "/requestBody/content/application~1json/schema")
            rerrs = self.doc.errors(rptr, body)
            if 200 <= status < 300 and rerrs:
                problems.append("the server accepted a body the documented request schema "
                                "refuses: " + "; ".join(rerrs[:5]))
            if doc_rejects and not rerrs:
                problems.append("the documented request schema accepts a body the test "
                                "expects it to refuse")
        if doc_rejects and 200 <= status < 300:
            problems.append("the server accepted a body it should refuse")
        tap.ok(not problems, label, "\n".join(problems))
        return status, rh, parsed


def check(tap, cond, desc, diag=None):
    return tap.ok(cond, desc, diag)


def field_errors(problem):
    return {e["field"]: e["message"] for e in (problem or {}).get("errors", [])}


def oversize(base, method, path, token):
    """A request announcing a body over 1 MiB: (status, headers, body)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path)
        conn.putheader("Authorization", "Bearer " + token)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2 * 1024 * 1024))
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def oversize_chunked(base, method, path, token):
    """A chunked body (no Content-Length) that grows past 1 MiB."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    chunk = b" " * 65536

    def gen():
        yield b'{"name":"'
        for _ in range(18):  # 1.125 MiB
            yield chunk
        yield b'"}'
    try:
        conn.request(method, path, body=gen(), encode_chunked=True,
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    except (BrokenPipeError, ConnectionResetError) as e:
        return None, None, str(e).encode()
    finally:
        conn.close()


def run(tap, doc_path, binary):
    with open(doc_path, "rb") as f:
        doc_bytes = f.read()
    doc_json = json.loads(doc_bytes)
    try:
        validate_spec(doc_json)
        check(tap, True, "docs/openapi.json is a valid OpenAPI 3.1 document")
    except Exception as e:  # the validator raises several exception types
        check(tap, False, "docs/openapi.json is a valid OpenAPI 3.1 document", str(e)[:2000])
        return
    check(tap, doc_json.get("openapi") == "3.1.0" and doc_json["info"]["version"] == "0.1.0",
          "openapi 3.1.0, info.version 0.1.0")
    doc = Doc(doc_json)

    # Every schema in components must itself be a valid 2020-12 schema.
    bad = []
    for name, s in doc_json["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(s)
        except jsonschema.SchemaError as e:
            bad.append(f"{name}: {e.message}")
    check(tap, not bad, "every component schema is a valid JSON Schema 2020-12", "\n".join(bad))

    admin = "adm_" + secrets.token_hex(20)
    daemon = Daemon(binary, admin)
    try:
        c = Client(tap, doc, daemon.base, admin)
        scenario(tap, c, doc, doc_json, doc_bytes, daemon.base, admin)
    finally:
        rc = daemon.stop()
        check(tap, rc == 0, "SIGTERM stops the daemon with exit status 0",
              f"exit status {rc}\n{daemon.log_tail()}")
        if tap.failed:
            tap.note("daemon log (tail):\n" + daemon.log_tail())
        daemon.cleanup()


def scenario(tap, c, doc, doc_json, doc_bytes, base, admin):
    A = c.call
    # --- meta ------------------------------------------------------------------------
    A("/healthz", "get", token=None, expect=200)
    A("/readyz", "get", token=None, expect=200)
    st, _, served = A("/v1/openapi.json", "get", expect=200)
    check(tap, served == doc_json, "GET /v1/openapi.json serves docs/openapi.json as built")

    # Every /v1 operation refuses a request without a token, and one with a bad token.
    for path, m in doc.operations():
        if not path.startswith("/v1/"):
            continue
        params = {"id": "x", "team": "x"}
        A(path, m, params=params, token=None, expect=401, desc="no token")
    A("/v1/gpu-types", "get", token="not-a-token", expect=401, desc="unknown token")
    A("/v1/gpu-types", "get", token="", expect=401, desc="empty bearer")

    # --- catalog -----------------------------------------------------------------------
    _, _, lst = A("/v1/gpu-types", "get", expect=200)
    ids = [g["id"] for g in (lst or {}).get("items", [])]
    check(tap, ids == sorted(ids) and "h100-80gb" in ids, "GPU types are sorted by id, seeded")
    A("/v1/gpu-types/{id}", "get", params={"id": "h100-80gb"}, expect=200)
    A("/v1/gpu-types/{id}", "get", params={"id": "no-such-gpu"}, expect=404)
    gput = {"name": "Test GPU", "price_per_gpu_hour": "2.5", "capacity": 4}
    _, _, g = A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"}, body=gput, expect=201)
    check(tap, g is not None and g["price_per_gpu_hour"] == "2.50" and g["available"] == 4,
          "PUT gpu type: money printed with 2 decimals, available = capacity")
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"},
      body=dict(gput, price_date="2026-01-31"), expect=200, desc="replace")
    A("/v1/gpu-types/{id}", "put", params={"id": "h100-80gb"},
      body={"name": "NVIDIA H100 80GB", "price_per_gpu_hour": "6.88", "capacity": 8}, expect=200)
    _, _, p = A("/v1/gpu-types/{id}", "put", params={"id": "Bad_Id"}, body=gput, expect=422,
                desc="bad id")
    check(tap, "id" in field_errors(p), "bad GPU type id names field id", p)
    _, _, p = A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"},
                body=dict(gput, color="red"), expect=422, doc_rejects=True, desc="unknown field")
    check(tap, field_errors(p).get("color") == "unknown field",
          "unknown field is named with message 'unknown field'", p)
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"}, body=dict(gput, capacity=1000001),
      expect=422, doc_rejects=True, desc="capacity too large")
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"},
      body=dict(gput, price_per_gpu_hour="-1"), expect=422, doc_rejects=True, desc="negative")
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"},
      body=dict(gput, price_per_gpu_hour=2.5), expect=422, doc_rejects=True,
      desc="money as a number")
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"},
      body={"name": "x", "capacity": 1}, expect=422, doc_rejects=True, desc="missing price")

    # --- teams -------------------------------------------------------------------------
    alpha = {"display_name": "Alpha", "budget": {"amount": "1000", "period": "monthly"}}
    _, _, t = A("/v1/teams/{team}", "put", params={"team": "alpha"}, body=alpha, expect=201)
    check(tap, t is not None and t["available"] == "1000.00" and
          t["alert_thresholds"] == [0.5, 0.8, 1.0], "new team: available = budget, default "
          "thresholds", t)
    A("/v1/teams/{team}", "put", params={"team": "alpha"}, body=alpha, expect=200, desc="replace")
    A("/v1/teams/{team}", "put", params={"team": "beta"},
      body={"display_name": "Beta", "budget": {"amount": "100000.5", "period": "quarterly"},
            "alert_thresholds": [0.5, 0.9]}, expect=201)
    A("/v1/teams/{team}", "put", params={"team": "alpha"},
      body={"display_name": "A", "budget": {"amount": "1", "period": "daily"}}, expect=422,
      doc_rejects=True, desc="bad period")
    _, _, p = A("/v1/teams/{team}", "put", params={"team": "alpha"},
                body={"display_name": "A", "budget": {"amount": "1", "period": "weekly",
                                                       "x": 1}},
                expect=422, doc_rejects=True, desc="unknown nested field")
    check(tap, field_errors(p).get("budget.x") == "unknown field", "nested unknown field named",
          p)
    A("/v1/teams/{team}", "put", params={"team": "alpha"},
      body=dict(alpha, alert_thresholds=[0.9, 0.5]), expect=422, desc="thresholds descending")
    A("/v1/teams/{team}", "put", params={"team": "alpha"},
      body=dict(alpha, alert_thresholds=[0, 0.5]), expect=422, doc_rejects=True,
      desc="threshold 0")
    A("/v1/teams/{team}", "put", params={"team": "alpha"},
      body={"display_name": "A", "budget": {"amount": "1.1234567", "period": "weekly"}},
      expect=422, doc_rejects=True, desc="7 decimals")
    A("/v1/teams/{team}", "put", params={"team": "beta"},
      body={"display_name": "Beta", "budget": {"amount": "100000.5", "period": "quarterly"},
            "namespaces": ["beta", "alpha"]}, expect=409, desc="another team's namespace")
    A("/v1/teams/{team}", "put", params={"team": "alpha"},
      body=dict(alpha, namespaces=["Alpha"]), expect=422, doc_rejects=True,
      desc="a namespace that is not a DNS label")
    _, _, tl = A("/v1/teams", "get", expect=200)
    check(tap, sorted(x["id"] for x in (tl or {}).get("items", [])) == ["alpha", "beta"],
          "GET /v1/teams lists both teams")
    A("/v1/teams/{team}", "get", params={"team": "alpha"}, expect=200)
    A("/v1/teams/{team}", "get", params={"team": "nobody"}, expect=404)

    # --- tokens ------------------------------------------------------------------------
    toks = {}
    for role, teams in [("finance", []), ("member", ["alpha"]), ("service", []),
                        ("spare", [])]:
        body = {"name": f"{role}-token", "role": "service" if role == "spare" else role}
        if teams:
            body["teams"] = teams
        _, _, tk = A("/v1/tokens", "post", body=body, expect=201, desc=role)
        toks[role] = tk or {"id": "missing", "token": "missing"}
    fin, mem, svc = toks["finance"]["token"], toks["member"]["token"], toks["service"]["token"]
    A("/v1/tokens", "post", body={"name": "m", "role": "member"}, expect=422,
      desc="member without teams")
    A("/v1/tokens", "post", body={"name": "m", "role": "root"}, expect=422, doc_rejects=True,
      desc="bad role")
    _, _, p = A("/v1/tokens", "post", body={"name": "m", "role": "member", "teams": ["ghost"]},
                expect=422, desc="unknown team")
    check(tap, "teams[0]" in field_errors(p), "unknown token team names teams[0]", p)
    _, _, tl = A("/v1/tokens", "get", expect=200)
    check(tap, tl is not None and all("token" not in x for x in tl["items"]),
          "token list never shows a secret")
    A("/v1/tokens", "get", token=fin, expect=403, desc="finance")
    _, _, tl = A("/v1/tokens", "get", query={"status": "active"}, expect=200, desc="active")
    check(tap, tl is not None and all(x["status"] == "active" for x in tl["items"]),
          "token list ?status=active shows active tokens only", tl)
    A("/v1/tokens", "get", query={"status": "gone"}, expect=422, desc="bad status")
    A("/v1/tokens", "post", token=mem, body={"name": "x", "role": "admin"}, expect=403,
      desc="member")
    spare = toks["spare"]
    A("/v1/gpu-types", "get", token=spare["token"], expect=200, desc="spare token works")
    A("/v1/tokens/{id}", "delete", params={"id": spare["id"]}, expect=204)
    A("/v1/gpu-types", "get", token=spare["token"], expect=401, desc="revoked token")
    A("/v1/tokens/{id}", "delete", params={"id": spare["id"]}, expect=204, desc="again")
    A("/v1/tokens/{id}", "delete", params={"id": "tok_nonexistent"}, expect=404)
    A("/v1/tokens/{id}", "delete", params={"id": spare["id"]}, token=svc, expect=403,
      desc="service")

    # Role checks on admin-only writes.
    A("/v1/gpu-types/{id}", "put", params={"id": "test-gpu"}, body=gput, token=fin, expect=403,
      desc="finance")
    A("/v1/teams/{team}", "put", params={"team": "alpha"}, body=alpha, token=svc, expect=403,
      desc="service")
    A("/v1/teams/{team}", "get", params={"team": "beta"}, token=mem, expect=403,
      desc="member, other team")
    _, _, tl = A("/v1/teams", "get", token=mem, expect=200, desc="member")
    check(tap, [x["id"] for x in (tl or {}).get("items", [])] == ["alpha"],
          "a member lists only its teams")

    # --- partial updates and retirement (issue 16) ----------------------------------
    MP = "application/merge-patch+json"
    _, _, t = A("/v1/teams/{team}", "patch", params={"team": "alpha"}, ctype=MP,
                body={"admins": ["jane@example.com", "user:default/bob"]}, expect=200)
    check(tap, t is not None and t["admins"] == ["jane@example.com", "user:default/bob"] and
          t["budget"] == {"amount": "1000.00", "period": "monthly"} and
          t["display_name"] == "Alpha", "PATCH admins keeps name and budget", t)
    _, _, t = A("/v1/teams/{team}", "patch", params={"team": "beta"},
                body={"budget": {"amount": "100001"}}, expect=200, desc="application/json")
    check(tap, t is not None and t["budget"] == {"amount": "100001.00", "period": "quarterly"}
          and t["alert_thresholds"] == [0.5, 0.9], "PATCH budget.amount keeps the period", t)
    _, _, p = A("/v1/teams/{team}", "patch", params={"team": "alpha"}, ctype=MP,
                body={"display_name": None, "admins": ["not an address"],
                      "budget": {"amount": "-1"}},
                expect=422, doc_rejects=True, desc="bad patch")
    fe = field_errors(p)
    check(tap, set(fe) == {"display_name", "admins[0]", "budget.amount"},
          "a bad patch names every field", p)
    _, _, t = A("/v1/teams/{team}", "get", params={"team": "alpha"}, expect=200,
                desc="after a bad patch")
    check(tap, t is not None and t["display_name"] == "Alpha" and len(t["admins"]) == 2,
          "a bad patch changes nothing", t)
    A("/v1/teams/{team}", "patch", params={"team": "nobody"}, ctype=MP,
      body={"display_name": "N"}, expect=404)
    A("/v1/teams/{team}", "patch", params={"team": "alpha"}, ctype=MP,
      body={"display_name": "Mine"}, token=mem, expect=403, desc="member")
    gamma = {"display_name": "Gamma", "budget": {"amount": "50", "period": "monthly"}}
    A("/v1/teams/{team}", "put", params={"team": "gamma"}, body=gamma, expect=201)
    _, _, t = A("/v1/teams/{team}/retire", "post", params={"team": "gamma"}, expect=200)
    check(tap, t is not None and t["retired_at"] is not None, "retire sets retired_at", t)
    _, _, t2 = A("/v1/teams/{team}/retire", "post", params={"team": "gamma"}, expect=200,
                 desc="again")
    check(tap, t and t2 and t2["retired_at"] == t["retired_at"], "retire is idempotent", t2)
    A("/v1/teams/{team}/retire", "post", params={"team": "nobody"}, expect=404)
    A("/v1/teams/{team}/retire", "post", params={"team": "alpha"}, token=mem, expect=403,
      desc="member")
    _, _, p = A("/v1/quotes", "post", expect=409, desc="retired team",
                body={"team": "gamma", "gpu_type": "h100-80gb", "gpu_count": 1,
                      "max_runtime_hours": 1})
    check(tap, p is not None and p["field"] == "team", "a retired team's quote names team", p)
    _, _, p = A("/v1/allocations", "post", expect=409, desc="retired team",
                body={"team": "gamma", "project": "p", "gpu_type": "h100-80gb",
                      "gpu_count": 1, "max_runtime_hours": 1})
    check(tap, p is not None and p["field"] == "team" and p["type"].endswith("/retired"),
          "a retired team's allocation is 409 retired on field team", p)
    A("/v1/teams/{team}", "put", params={"team": "gamma"}, body=gamma, expect=409,
      desc="retired")
    _, _, p = A("/v1/teams/{team}", "patch", params={"team": "gamma"}, ctype=MP,
                body={"display_name": "G"}, expect=409, desc="retired")
    check(tap, p is not None and "retired_at" in p["detail"], "409 says how to reactivate", p)
    _, _, tl = A("/v1/teams", "get", expect=200, desc="retired hidden")
    check(tap, "gamma" not in [x["id"] for x in (tl or {}).get("items", [])],
          "GET /v1/teams hides a retired team")
    _, _, tl = A("/v1/teams", "get", query={"include_retired": "true"}, expect=200,
                 desc="include_retired")
    check(tap, "gamma" in [x["id"] for x in (tl or {}).get("items", [])],
          "include_retired=true lists it")
    _, _, p = A("/v1/teams", "get", query={"include_retired": "yes"}, expect=422,
                desc="include_retired=yes")
    check(tap, "include_retired" in field_errors(p), "a bad include_retired is named", p)
    A("/v1/teams/{team}", "get", params={"team": "gamma"}, expect=200, desc="retired")
    _, _, t = A("/v1/teams/{team}", "patch", params={"team": "gamma"}, ctype=MP,
                body={"retired_at": None}, expect=200, desc="reactivate")
    check(tap, t is not None and t["retired_at"] is None, "retired_at: null reactivates", t)

    # GPU types: provenance kept unless the price changes; retire.
    old = {"name": "Old GPU", "price_per_gpu_hour": "1.5", "capacity": 2}
    _, _, g = A("/v1/gpu-types/{id}", "get", params={"id": "h100-80gb"}, expect=200,
                desc="provenance before")
    src = (g or {}).get("price_source")
    _, _, g = A("/v1/gpu-types/{id}", "patch", params={"id": "h100-80gb"}, ctype=MP,
                body={"capacity": 8, "price_per_gpu_hour": "6.88"}, expect=200)
    check(tap, g is not None and g["price_source"] == src and g["capacity"] == 8,
          "PATCH with the same price keeps price_source", g)
    A("/v1/gpu-types/{id}", "patch", params={"id": "no-such-gpu"}, ctype=MP,
      body={"capacity": 1}, expect=404)
    A("/v1/gpu-types/{id}", "patch", params={"id": "h100-80gb"}, ctype=MP,
      body={"capacity": 1}, token=mem, expect=403, desc="member")
    _, _, p = A("/v1/gpu-types/{id}", "patch", params={"id": "h100-80gb"}, ctype=MP,
                body={"name": None, "capacity": -1}, expect=422, doc_rejects=True,
                desc="bad patch")
    check(tap, set(field_errors(p)) == {"name", "capacity"}, "a bad GPU patch names fields", p)
    A("/v1/gpu-types/{id}", "put", params={"id": "old-gpu"}, body=old, expect=201)
    _, _, g = A("/v1/gpu-types/{id}/retire", "post", params={"id": "old-gpu"}, expect=200)
    check(tap, g is not None and g["retired_at"] is not None and g["available"] == 0,
          "a retired GPU type has none available", g)
    A("/v1/gpu-types/{id}/retire", "post", params={"id": "no-such-gpu"}, expect=404)
    A("/v1/gpu-types/{id}/retire", "post", params={"id": "old-gpu"}, token=mem, expect=403,
      desc="member")
    _, _, p = A("/v1/quotes", "post", expect=409, desc="retired GPU type",
                body={"team": "alpha", "gpu_type": "old-gpu", "gpu_count": 1,
                      "max_runtime_hours": 1})
    check(tap, p is not None and p["field"] == "gpu_type", "names gpu_type", p)
    A("/v1/gpu-types/{id}", "put", params={"id": "old-gpu"}, body=old, expect=409,
      desc="retired")
    A("/v1/gpu-types/{id}", "patch", params={"id": "old-gpu"}, ctype=MP,
      body={"capacity": 3}, expect=409, desc="retired")
    _, _, gl = A("/v1/gpu-types", "get", expect=200, desc="retired hidden")
    check(tap, "old-gpu" not in [x["id"] for x in (gl or {}).get("items", [])],
          "GET /v1/gpu-types hides a retired type")
    _, _, gl = A("/v1/gpu-types", "get", query={"include_retired": "true"}, expect=200,
                 desc="include_retired")
    check(tap, "old-gpu" in [x["id"] for x in (gl or {}).get("items", [])],
          "include_retired=true lists it")
    A("/v1/gpu-types", "get", query={"include_retired": "1"}, expect=422,
      desc="include_retired=1")

    # --- quotes ------------------------------------------------------------------------
    q = {"team": "alpha", "gpu_type": "h100-80gb", "gpu_count": 1, "max_runtime_hours": 2}
    _, _, qr = A("/v1/quotes", "post", body=q, token=mem, expect=200)
    check(tap, qr is not None and qr["approved"] is True and qr["estimated_cost"] == "13.76"
          and qr["reasons"] == [], "quote: 1 x 6.88 x 2 h = 13.76, approved", qr)
    _, _, qr = A("/v1/quotes", "post", body=dict(q, gpu_count=8, max_runtime_hours=168),
                 expect=200, desc="over budget")
    check(tap, qr is not None and qr["approved"] is False and len(qr["reasons"]) == 1,
          "quote over budget: not approved, one reason", qr)
    A("/v1/quotes", "post", body=dict(q, project="llm"), token=svc, expect=200,
      desc="service, with project")
    A("/v1/quotes", "post", body=q, token=fin, expect=403, desc="finance")
    A("/v1/quotes", "post", body=dict(q, team="beta"), token=mem, expect=403,
      desc="member, other team")
    _, _, p = A("/v1/quotes", "post", body=dict(q, team="nobody"), expect=422,
                desc="unknown team")
    check(tap, "team" in field_errors(p), "unknown team names field team", p)
    _, _, p = A("/v1/quotes", "post", body=dict(q, gpu_type="nope"), expect=422,
                desc="unknown gpu type")
    check(tap, "gpu_type" in field_errors(p), "unknown gpu type names field gpu_type", p)
    A("/v1/quotes", "post", body=dict(q, gpu_count=0), expect=422, doc_rejects=True,
      desc="gpu_count 0")
    A("/v1/quotes", "post", body=dict(q, gpu_count=9), expect=422, desc="over capacity")
    A("/v1/quotes", "post", body=dict(q, max_runtime_hours=0), expect=422, doc_rejects=True,
      desc="runtime 0")
    A("/v1/quotes", "post", body=dict(q, purpose="x"), expect=422, doc_rejects=True,
      desc="purpose is not a quote field")

    # --- allocations -------------------------------------------------------------------
    ar = {"team": "alpha", "project": "llm", "gpu_type": "h100-80gb", "gpu_count": 2,
          "max_runtime_hours": 1.5, "purpose": "fine-tune", "labels": {"run": "r1"}}
    _, _, a1 = A("/v1/allocations", "post", body=ar, token=mem,
                 headers={"Idempotency-Key": "key-1"}, expect=201)
    a1 = a1 or {"id": "missing"}
    check(tap, a1.get("status") == "approved" and a1.get("estimated_cost") == "20.64" and
          a1.get("actual_cost") is None and a1.get("max_runtime_hours") == 1.5,
          "allocation approved: 2 x 6.88 x 1.5 h = 20.64", a1)
    _, _, again = A("/v1/allocations", "post", body=ar, token=mem,
                    headers={"Idempotency-Key": "key-1"}, expect=201, desc="idempotent replay")
    check(tap, again is not None and again.get("id") == a1["id"],
          "same Idempotency-Key and body: the first answer again")
    _, _, p = A("/v1/allocations", "post", body=dict(ar, gpu_count=1), token=mem,
                headers={"Idempotency-Key": "key-1"}, expect=422, desc="key reused")
    check(tap, p is not None and p["type"].endswith("/idempotency-mismatch"),
          "different body: idempotency-mismatch", p)
    A("/v1/allocations", "post", body=ar, token=mem, headers={"Idempotency-Key": "a b"},
      expect=422, desc="bad Idempotency-Key")
    _, _, p = A("/v1/allocations", "post", body=dict(ar, gpu_count=4, max_runtime_hours=168),
                headers={"Idempotency-Key": "key-2"}, expect=409, desc="over budget")
    check(tap, p is not None and p["type"].endswith("/budget-exceeded") and
          p["estimated_cost"] == "4623.36", "budget refusal says what it would cost", p)
    _, _, p2 = A("/v1/allocations", "post", body=dict(ar, gpu_count=4, max_runtime_hours=168),
                 headers={"Idempotency-Key": "key-2"}, expect=409, desc="refusal replay")
    check(tap, p2 is not None and p is not None and p2["detail"] == p["detail"],
          "a refusal is replayed under its Idempotency-Key")
    br = {"team": "beta", "project": "vision", "gpu_type": "test-gpu", "gpu_count": 3,
          "max_runtime_hours": 1}
    _, _, a2 = A("/v1/allocations", "post", body=br, token=svc, expect=201, desc="service")
    a2 = a2 or {"id": "missing"}
    _, _, p = A("/v1/allocations", "post", body=dict(br, gpu_count=2), expect=409,
                desc="over capacity")
    check(tap, p is not None and p["type"].endswith("/capacity-exceeded") and
          p["gpus_available"] == 1, "capacity refusal says how many GPUs are free", p)
    A("/v1/allocations", "post", body=br, token=mem, expect=403, desc="member, other team")
    A("/v1/allocations", "post", body=ar, token=fin, expect=403, desc="finance")
    _, _, p = A("/v1/allocations", "post", body=dict(ar, flavour="x"), expect=422,
                doc_rejects=True, desc="unknown field")
    check(tap, field_errors(p).get("flavour") == "unknown field", "unknown field named", p)
    A("/v1/allocations", "post", body=dict(ar, project="Bad"), expect=422, doc_rejects=True,
      desc="bad project")
    A("/v1/allocations", "post", body=dict(ar, labels={f"k{i}": "v" for i in range(33)}),
      expect=422, doc_rejects=True, desc="33 labels")
    A("/v1/allocations", "post", body=dict(ar, purpose="p" * 1001), expect=422,
      doc_rejects=True, desc="purpose too long")
    A("/v1/allocations", "post", body={k: v for k, v in ar.items() if k != "project"},
      expect=422, doc_rejects=True, desc="missing project")
    _, _, a3 = A("/v1/allocations", "post", body=dict(ar, gpu_count=1, labels={}), expect=201,
                 desc="second alpha allocation")
    a3 = a3 or {"id": "missing"}

    _, _, al = A("/v1/allocations", "get", expect=200)
    check(tap, al is not None and len(al["items"]) == 3 and al["next_cursor"] is None,
          "three allocations, one page", al and [x["id"] for x in al["items"]])
    _, _, al = A("/v1/allocations", "get", query={"team": "alpha", "status": "approved",
                                                   "limit": 1}, expect=200, desc="page 1")
    cur = (al or {}).get("next_cursor")
    check(tap, cur is not None, "limit=1 gives a next_cursor")
    if cur:
        _, _, al2 = A("/v1/allocations", "get", query={"team": "alpha", "status": "approved",
                                                        "limit": 1, "cursor": cur},
                      expect=200, desc="page 2")
        check(tap, al2 is not None and len(al2["items"]) == 1 and
              al2["items"][0]["id"] != al["items"][0]["id"], "page 2 holds the other one")
    _, _, al = A("/v1/allocations", "get", token=mem, expect=200, desc="member")
    check(tap, al is not None and {x["team"] for x in al["items"]} == {"alpha"},
          "a member lists only its teams' allocations")
    A("/v1/allocations", "get", query={"limit": 0}, expect=422, desc="limit 0")
    A("/v1/allocations", "get", query={"status": "bogus"}, expect=422, desc="bad status")
    A("/v1/allocations", "get", query={"cursor": "not-a-cursor"}, expect=422, desc="bad cursor")
    A("/v1/allocations", "get", query={"team": "beta"}, token=mem, expect=403,
      desc="member, other team")
    A("/v1/allocations/{id}", "get", params={"id": a1["id"]}, token=fin, expect=200)
    A("/v1/allocations/{id}", "get", params={"id": a2["id"]}, token=mem, expect=404,
      desc="member, other team")
    A("/v1/allocations/{id}", "get", params={"id": "alloc_nope"}, expect=404)

    # --- transitions -------------------------------------------------------------------
    ID = {"id": a1["id"]}
    st = "/v1/allocations/{id}/start"
    co = "/v1/allocations/{id}/complete"
    ca = "/v1/allocations/{id}/cancel"
    A(st, "post", params=ID, body={"started_at": "2000-01-01T00:00:00Z"}, expect=422,
      desc="before approval")
    A(st, "post", params=ID, body={"started_at": "2999-01-01T00:00:00Z"}, expect=422,
      desc="in the future")
    A(st, "post", params=ID, body={"started_at": "yesterday"}, expect=422, doc_rejects=True,
      desc="not a time")
    A(st, "post", params=ID, body={"ended_at": "2000-01-01T00:00:00Z"}, expect=422,
      doc_rejects=True, desc="wrong field")
    A(st, "post", params=ID, token=fin, expect=403, desc="finance")
    A(st, "post", params={"id": a2["id"]}, token=mem, expect=404, desc="member, other team")
    A(st, "post", params={"id": "alloc_nope"}, expect=404)
    _, _, r = A(st, "post", params=ID, token=mem, expect=200, desc="empty body")
    check(tap, r is not None and r["status"] == "running" and "released" not in r,
          "start: running, nothing released yet", r)
    _, _, r2 = A(st, "post", params=ID, token=mem, body={}, expect=200, desc="repeat")
    check(tap, r2 is not None and r is not None and r2["started_at"] == r["started_at"],
          "repeating start changes nothing")
    A(co, "post", params=ID, body={"ended_at": "2000-01-01T00:00:00Z"}, expect=422,
      desc="before start")
    _, _, r = A(co, "post", params=ID, body={}, token=svc, expect=200)
    check(tap, r is not None and r["status"] == "completed" and r["actual_cost"] is not None
          and "released" in r, "complete: actual cost charged, estimate released", r)
    _, _, r2 = A(co, "post", params=ID, expect=200, desc="repeat")
    check(tap, r2 is not None and r is not None and r2["actual_cost"] == r["actual_cost"],
          "repeating complete charges nothing twice")
    A(ca, "post", params=ID, expect=409, desc="cancel completed")
    A(co, "post", params={"id": a3["id"]}, expect=409, desc="complete before start")
    _, _, r = A(ca, "post", params={"id": a2["id"]}, token=svc, expect=200)
    check(tap, r is not None and r["status"] == "cancelled" and
          r["released"] == r["estimated_cost"], "cancel releases the whole estimate", r)
    A(ca, "post", params={"id": a2["id"]}, body={}, expect=200, desc="repeat")
    A(st, "post", params={"id": a2["id"]}, expect=409, desc="start cancelled")
    A(ca, "post", params={"id": a3["id"]}, body={"reason": "x"}, expect=422, doc_rejects=True,
      desc="unknown field")
    A(ca, "post", params={"id": a3["id"]}, token=fin, expect=403, desc="finance")
    A(ca, "post", params={"id": "alloc_nope"}, expect=404)
    A(co, "post", params={"id": a2["id"]}, token=mem, expect=404, desc="member, other team")
    A(co, "post", params={"id": a3["id"]}, token=fin, expect=403, desc="finance")
    A(co, "post", params={"id": "alloc_nope"}, expect=404)
    _, _, t = A("/v1/teams/{team}", "get", params={"team": "alpha"}, token=mem, expect=200,
                desc="after completion")
    check(tap, t is not None and t["running_allocations"] == 0, "no running allocation left", t)

    # --- costs -------------------------------------------------------------------------
    _, _, cs = A("/v1/costs", "get", token=fin, expect=200)
    check(tap, cs is not None and cs["group_by"] == "team" and
          [x["key"] for x in cs["items"]] == sorted(x["key"] for x in cs["items"]),
          "costs: default group_by team, sorted by key", cs)
    for gb in ("project", "gpu_type", "day", "month"):
        A("/v1/costs", "get", query={"group_by": gb}, expect=200, desc=gb)
    A("/v1/costs", "get", query={"view": "budget", "month": "2026-11", "include_running": "false"},
      expect=200, desc="budget view of a month")
    A("/v1/costs", "get", query={"month": "2026-11", "from": "2026-11-01"}, expect=422,
      desc="month and from")
    A("/v1/costs/periods", "get", query={"team": "alpha", "limit": 3}, token=fin, expect=200)
    A("/v1/costs/periods", "get", query={"team": "alpha"}, token=mem, expect=200, desc="member")
    A("/v1/costs/periods", "get", query={"team": "beta"}, token=mem, expect=403,
      desc="member, another team")
    A("/v1/costs/periods", "get", query={"team": "nope"}, expect=404, desc="no such team")
    A("/v1/costs/periods", "get", query={"team": "alpha", "limit": 0}, expect=422, desc="bad limit")
    A("/v1/costs", "get", query={"from": "2020-01-01", "to": "2100-01-01T00:00:00Z"},
      expect=200, desc="dates")
    _, _, cs = A("/v1/costs", "get", token=mem, expect=200, desc="member")
    check(tap, cs is not None and {x["key"] for x in cs["items"]} <= {"alpha"},
          "a member's costs cover only its teams", cs)
    A("/v1/costs", "get", query={"group_by": "week"}, expect=422, desc="bad group_by")
    A("/v1/costs", "get", query={"from": "2030-01-01", "to": "2020-01-01"}, expect=422,
      desc="to before from")
    A("/v1/costs", "get", query={"from": "garbage"}, expect=422, desc="bad from")
    A("/v1/costs", "get", query={"team": "alpha"}, expect=200, desc="one team")
    A("/v1/costs", "get", query={"team": "beta"}, token=mem, expect=403,
      desc="member, another team")
    A("/v1/costs/export", "get", query={"team": "beta"}, token=mem, expect=403,
      desc="member, another team")
    A("/v1/costs/export", "get", query={"format": "focus", "from": "2020-01-01",
                                        "to": "2100-01-01"}, token=fin, expect=200)
    A("/v1/costs/export", "get", query={"format": "xml"}, expect=422, desc="bad format")
    A("/v1/costs/export", "get", token=None, expect=401, desc="no token")
    A("/metrics", "get", token=None, expect=200)

    # --- audit -------------------------------------------------------------------------
    _, _, au = A("/v1/audit", "get", expect=200)
    seqs = [e["seq"] for e in (au or {}).get("items", [])]
    check(tap, len(seqs) > 5 and seqs == sorted(seqs), "audit: oldest first", seqs)
    _, _, au = A("/v1/audit", "get", query={"limit": 2}, token=fin, expect=200, desc="page 1")
    cur = (au or {}).get("next_cursor")
    check(tap, cur is not None, "audit limit=2 gives a next_cursor")
    if cur:
        _, _, au2 = A("/v1/audit", "get", query={"limit": 2, "cursor": cur}, expect=200,
                      desc="page 2")
        check(tap, au2 is not None and au is not None and
              au2["items"][0]["seq"] > au["items"][-1]["seq"], "audit page 2 follows page 1")
    _, _, au = A("/v1/audit", "get", query={"team": "alpha"}, expect=200, desc="team")
    check(tap, au is not None and all(e["team"] == "alpha" for e in au["items"]),
          "audit ?team= filters", au)
    A("/v1/audit", "get", token=mem, expect=403, desc="member")
    A("/v1/audit", "get", token=svc, expect=403, desc="service")
    A("/v1/audit", "get", query={"limit": 501}, expect=422, desc="limit 501")
    A("/v1/audit", "get", query={"team": "BAD"}, expect=422, desc="bad team")
    A("/v1/audit", "get", query={"cursor": "xyz"}, expect=422, desc="bad cursor")
    # Filters (docs: AuditAction, since/until) and the records in the API's shapes.
    _, _, au = A("/v1/audit", "get", query={"action": "team.update"}, token=fin, expect=200,
                 desc="action")
    check(tap, au is not None and au["items"] and
          all(e["action"] == "team.update" and isinstance(e["after"]["budget"], dict) and
              isinstance(e["after"]["updated_at"], str) for e in au["items"]),
          "audit ?action= filters; a team's budget is an object, its times RFC 3339", au)
    _, _, au = A("/v1/audit", "get", query={"actor": "bootstrap admin", "since": "2000-01-01",
                                            "until": "2999-01-01T00:00:00Z"}, expect=200,
                 desc="actor, since, until")
    check(tap, au is not None and au["items"] and
          all(e["actor"]["name"] == "bootstrap admin" for e in au["items"]),
          "audit ?actor= matches the actor's name", au)
    _, _, p = A("/v1/audit", "get", query={"since": "yesterday"}, expect=422, desc="bad since")
    check(tap, "since" in field_errors(p), "a bad since names the parameter", p)
    A("/v1/audit", "get", query={"action": "team.put"}, expect=422, doc_rejects=False,
      desc="unknown action")

    # --- transport-level refusals on every operation with a body -----------------------
    samples = {"id": a3["id"], "team": "alpha"}
    for path, m in doc.operations():
        if "requestBody" not in doc_json["paths"][path][m]:
            continue
        params = dict(samples)
        if path.startswith("/v1/gpu-types"):
            params["id"] = "test-gpu"
        A(path, m, params=params, raw=b'{"broken": ', expect=400, desc="malformed JSON")
        A(path, m, params=params, raw=b'{}', ctype="text/plain", expect=415, desc="text/plain")
        A(path, m, params=params, raw=b'{}', ctype=None, expect=415,
          desc="no Content-Type")  # urllib sends a form type; never JSON
        A(path, m, params=params, raw=b'[1]', expect=422, desc="not an object")
        url_path = c.url(path, params)[len(c.base):]
        s, h, b = oversize(c.base, m.upper(), url_path, admin)
        record(tap, c, doc, path, m, s, h, b, 413, "Content-Length over 1 MiB")
        if path == "/v1/teams/{team}":
            s, h, b = oversize_chunked(c.base, m.upper(), url_path, admin)
            record(tap, c, doc, path, m, s, h, b, 413, "chunked body over 1 MiB")
    # An encoded NUL anywhere in the target would silently cut the path or a
    # query value once unescaped: every operation refuses it with a 400
    # problem before routing (issue 11, finding 11).
    for path, m in doc.operations():
        params = dict(samples)
        if path.startswith("/v1/gpu-types"):
            params["id"] = "test-gpu"
        url = c.url(path, params) + "?x=a%00b"
        s, h, b = c.raw(m.upper(), url, None, {"Authorization": "Bearer " + admin})
        record(tap, c, doc, path, m, s, h, b, 400, "%00 in the query")
    # Bodies that need one: an empty one is malformed.
    for path, m, params in [("/v1/tokens", "post", {}), ("/v1/quotes", "post", {}),
                            ("/v1/teams/{team}", "put", {"team": "alpha"})]:
        A(path, m, params=params, raw=b"", expect=400, desc="empty body")

    # --- self-service jobs (no MLflow here: that step is skipped; the embedded git
    # repository).  502 (a neighbour failed) is exercised by tests/jobs. ---------------
    jb = {"team": "beta", "project": "vision", "name": "oa-job", "framework": "pytorch",
          "command": ["python", "train.py"], "gpu_type": "h100-80gb", "gpu_count": 1,
          "max_runtime_hours": 0.5}
    _, _, job = A("/v1/jobs", "post", body=jb, expect=201)
    check(tap, job is not None and job["mlflow"].get("skipped") is True and
          job["gitops"]["path"] == "apps/beta/oa-job", "POST /v1/jobs: created, MLflow skipped", job)
    A("/v1/jobs", "post", body=jb, expect=409, desc="same name: job-exists")
    A("/v1/jobs", "post", body=jb, token=mem, expect=403, desc="member, other team")
    A("/v1/jobs", "post", body=dict(jb, name="Bad_Name"), expect=422, doc_rejects=True,
      desc="name not a DNS label")
    A("/v1/jobs/{id}", "get", params={"id": (job or {}).get("id", "x")}, expect=200)
    A("/v1/jobs/{id}", "get", params={"id": "job_nosuchjob"}, expect=404)
    _, _, jl = A("/v1/jobs", "get", expect=200)
    # Only the first POST made a job: a name in use is refused before anything
    # is recorded or allocated (job-exists).
    check(tap, jl is not None and job is not None and
          [x["id"] for x in jl["items"]] == [job["id"]] and jl["items"][0]["state"] == "created",
          "GET /v1/jobs lists the created job (a refused name made none)", jl)
    # A retired team: the job is refused before anything is recorded (schemathesis
    # once found such jobs left "in_progress" forever).
    A("/v1/teams/{team}", "put", params={"team": "jobs-retired"},
      body={"display_name": "Retired", "budget": {"amount": "1000", "period": "monthly"}}, expect=201)
    A("/v1/teams/{team}/retire", "post", params={"team": "jobs-retired"}, expect=200)
    _, _, rj = A("/v1/jobs", "post", body=dict(jb, team="jobs-retired", name="g-job"), expect=409,
                 desc="retired team")
    check(tap, rj is not None and rj.get("type", "").endswith("/retired") and rj.get("field") == "team",
          "POST /v1/jobs for a retired team: 409 retired naming team", rj)
    _, _, gl = A("/v1/jobs", "get", query={"team": "jobs-retired"}, expect=200)
    check(tap, gl is not None and gl["items"] == [], "the refused job left no job record", gl)
    _, _, jl = A("/v1/jobs", "get", query={"team": "beta", "limit": 1}, token=fin, expect=200,
                 desc="team, finance")
    _, _, jl = A("/v1/jobs", "get", token=mem, expect=200, desc="member")
    check(tap, jl is not None and all(x["team"] == "alpha" for x in jl["items"]),
          "GET /v1/jobs: a member sees only its teams' jobs", jl)
    A("/v1/jobs", "get", query={"team": "beta"}, token=mem, expect=403, desc="member, other team")
    A("/v1/jobs", "get", query={"cursor": "xyz"}, expect=422, desc="bad cursor")

    # --- the Kubernetes admission webhook (docs/kubernetes.md) ------------------------
    def review(uid, labels, gpus):
        ctr = {"name": "c", "image": "x"}
        if gpus:
            ctr["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                            "operation": "CREATE", "namespace": "alpha",
                            "object": {"metadata": {"name": "p", "labels": labels},
                                       "spec": {"containers": [ctr]}}}}
    _, _, rv = A("/v1/admission/review", "post", body=review("u1", {}, 0), token=svc,
                 expect=200, desc="no GPUs: allowed")
    check(tap, rv is not None and rv["response"] == {"uid": "u1", "allowed": True},
          "admission: a pod without GPUs is allowed, uid echoed", rv)
    _, _, rv = A("/v1/admission/review", "post", body=review("u2", {}, 2), expect=200,
                 desc="GPUs, no label: denied")
    check(tap, rv is not None and rv["response"]["allowed"] is False and
          rv["response"]["status"]["code"] == 403, "admission: a GPU pod without a label is "
          "denied with a 403 status", rv)
    A("/v1/admission/review", "post", body={"apiVersion": "v1", "kind": "Pod"}, expect=400,
      desc="not an AdmissionReview")
    A("/v1/admission/review", "post", body=review("u3", {}, 0), token=mem, expect=403,
      desc="member")

    # --- outside the operations: 405 and unknown paths still speak problem+json --------
    s, h, b = c.raw("DELETE", base + "/v1/gpu-types", None, {"Authorization": "Bearer " + admin})
    errs = doc.errors("/components/schemas/Problem", json.loads(b or b"null"))
    check(tap, s == 405 and h.get("Allow") == "GET" and not errs and
          h.get("Content-Type") == "application/problem+json",
          "DELETE /v1/gpu-types -> 405 problem with Allow: GET", f"{s} {dict(h)} {b!r} {errs}")
    s, h, b = c.raw("GET", base + "/v1/nothing-here", None, {"Authorization": "Bearer " + admin})
    errs = doc.errors("/components/schemas/Problem", json.loads(b or b"null"))
    check(tap, s == 404 and not errs, "unknown path -> 404 problem", f"{s} {b!r} {errs}")

    # --- coverage ----------------------------------------------------------------------
    ops = set(doc.operations())
    missing = sorted(ops - c.exercised)
    check(tap, not missing, f"every documented operation was exercised ({len(ops)})",
          "\n".join(f"{m.upper()} {p}" for p, m in missing))
    unseen = []
    for p, m in sorted(ops):
        for status in doc_json["paths"][p][m]["responses"]:
            if status not in NOT_EXERCISABLE and (p, m, status) not in c.seen:
                unseen.append(f"{m.upper()} {p} {status}")
    check(tap, not unseen, "every documented status (but 500/503) was produced by a real "
          "request", "\n".join(unseen))
    statuses = {s for (_, _, s) in c.seen}
    want = {"200", "201", "204", "400", "401", "403", "404", "409", "413", "415", "422"}
    check(tap, want <= statuses, "statuses seen include " + ",".join(sorted(want)),
          f"missing {sorted(want - statuses)}")


def record(tap, c, doc, path, m, s, h, b, expect, desc):
    """Checks a response obtained outside Client.call (raw http.client)."""
    label = f"{m.upper()} {path} [{desc}] -> {s}"
    if s is None:
        tap.ok(False, label, f"connection failed: {b!r}")
        return
    c.exercised.add((path, m))
    c.seen.add((path, m, str(s)))
    problems = []
    if s != expect:
        problems.append(f"expected {expect}")
    ptr, resp = doc.response(path, m, s)
    if resp is None:
        problems.append(f"status {s} is not documented")
    else:
        ct = (h.get("Content-Type") or "").split(";")[0].strip()
        if ct not in resp.get("content", {}):
            problems.append(f"Content-Type {ct!r} not documented")
        else:
            try:
                problems += doc.errors(f"{ptr}/content/{esc(ct)}/schema", json.loads(b))
            except ValueError as e:
                problems.append(f"not JSON: {e}")
    tap.ok(not problems, label, "\n".join(problems))


def main():
    tap = Tap()
    binary = os.environ.get("PLINTH_BIN")
    here = os.path.dirname(os.path.abspath(__file__))
    doc_path = os.environ.get("OPENAPI_DOC",
                              os.path.join(here, "..", "..", "docs", "openapi.json"))
    if not binary or not os.access(binary, os.X_OK):
        tap.ok(False, "PLINTH_BIN names an executable", f"PLINTH_BIN={binary!r}")
        return tap.done()
    try:
        run(tap, doc_path, binary)
    except Exception as e:  # report, never hide: a crash is a failure
        import traceback
        tap.ok(False, "harness ran to the end", traceback.format_exc())
        del e
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
