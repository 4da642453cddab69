#!/usr/bin/env python3
"""
tests/e2e/test_costviz.py - cost visibility against the real daemon: the
FOCUS export, Prometheus /metrics and budget alerts to webhooks.

- export: every mandatory FOCUS column is present; BilledCost sums exactly
  (decimal, not float) to the `spent` of GET /v1/costs?group_by=day for the
  same range, and to the team totals for a range that holds whole months;
  bad input is a 4xx problem.
- /metrics: parsed by prometheus_client's text parser (the reference
  implementation); team gauges equal GET /v1/teams, GPU gauges equal
  GET /v1/gpu-types, the latency histogram and outcome counters are there.
- alerts: a local webhook receiver gets exactly one POST per threshold per
  period with a Slack-compatible `text`, a receiver that fails first gets it
  after a retry, and a restart of the daemon neither repeats nor forgets one.

Output is TAP.  Environment: PLINTH_BIN.  It touches nothing outside its own
temporary directory.
"""
import csv
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from plinthtest import Tap  # noqa: E402

FOCUS_MANDATORY = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodStart", "ChargePeriodEnd", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
]
FOCUS_EXTRA = ["ResourceId", "Tags", "ConsumedQuantity", "ConsumedUnit", "SkuId"]
ADMIN = "costviz-admin-token-0123456789abcdef"


class Hooks:
    """A local webhook receiver: records every POST; /flaky fails the first two of
    team alerty's.  The demo's teams past a threshold (nlp, forecasting) are
    alerted too; of() counts only the test's own team."""

    def __init__(self):
        self.got = []  # (path, body dict)
        self.flaky_failures = 0
        self.lock = threading.Lock()
        hooks = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with hooks.lock:
                    mine = json.loads(raw).get("team") == "alerty"
                    if self.path == "/flaky" and mine and hooks.flaky_failures < 2:
                        hooks.flaky_failures += 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    hooks.got.append((self.path, json.loads(raw), self.headers.get("Content-Type")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def of(self, path):
        with self.lock:
            return [b for p, b, _ in self.got if p == path and b.get("team") == "alerty"]


class Daemon:
    def __init__(self, data, hooks):
        self.data = data
        self.hooks = hooks
        self.proc = None
        self.base = None

    def start(self):
        ready = os.path.join(self.data, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        env = dict(os.environ, PLINTH_ADMIN_TOKEN=ADMIN,
                   PLINTH_ALERT_WEBHOOKS=f"http://127.0.0.1:{self.hooks.port}/ok,"
                                         f"http://127.0.0.1:{self.hooks.port}/flaky")
        self.log = open(os.path.join(self.data, "daemon.log"), "ab")
        self.proc = subprocess.Popen(
            [os.environ["PLINTH_BIN"], "serve", "--listen", "127.0.0.1:0", "--data", self.data,
             "--ready-file", ready, "--demo", "--alert-interval", "1"],
            env=env, stdout=self.log, stderr=self.log)
        for _ in range(300):
            if os.path.exists(ready):
                with open(ready) as f:
                    self.base = f.read().strip()
                if self.base:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("the daemon exited at start")
            time.sleep(0.05)
        raise RuntimeError("the daemon did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None
            self.log.close()

    def req(self, method, path, body=None, token=ADMIN, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            r.add_header("Authorization", "Bearer " + token)
        if data is not None:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                text = resp.read().decode()
                return resp.status, resp.headers, (text if raw else json.loads(text or "null"))
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, e.headers, (json.loads(text) if text.startswith("{") else text)


def dec(s):
    return Decimal(s) if s not in (None, "") else Decimal(0)


def test_export(t, d):
    # The demo's running allocations accrue every second, so the exact sums
    # leave them out on both sides (include_running=false); test_month.c
    # checks them included, where their accrual has stopped.
    st, hdr, text = d.req("GET", "/v1/costs/export?format=focus&from=2020-01-01&to=2030-01-01"
                          "&include_running=false", raw=True)
    t.ok(st == 200 and hdr.get("Content-Type", "").startswith("text/csv"), "export is text/csv", st)
    rows = list(csv.DictReader(io.StringIO(text)))
    cols = text.splitlines()[0].split(",") if text else []
    missing = [c for c in FOCUS_MANDATORY + FOCUS_EXTRA if c not in cols]
    t.ok(not missing, "every mandatory FOCUS column (and ResourceId, Tags, ConsumedQuantity/Unit, SkuId) is present", missing)
    t.ok(all(c.startswith("x_") for c in cols if c not in FOCUS_MANDATORY + FOCUS_EXTRA + [
        "ContractedUnitPrice", "ListUnitPrice", "ResourceName", "ResourceType", "SkuPriceId",
        "SubAccountId", "SubAccountName"]), "every non-FOCUS column is x_-prefixed", cols)
    t.ok(len(rows) > 0, f"the demo ledger exports rows ({len(rows)})")
    t.ok(all(r["ChargeCategory"] == "Usage" and r["BillingCurrency"] == "USD"
             and r["ConsumedUnit"] == "GPU-Hours" and r["ServiceCategory"] == "AI and Machine Learning"
             for r in rows), "rows carry FOCUS allowed values")
    t.ok(all(r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"] for r in rows),
         "billed, effective, list and contracted cost agree (no discounts)")
    t.ok(all(json.loads(r["Tags"]) is not None for r in rows), "Tags is a JSON object on every row")
    per_alloc_day = {(r["ResourceId"], r["ChargePeriodStart"]) for r in rows}
    t.ok(len(per_alloc_day) == len(rows), "one row per allocation per day of use")

    total = sum(dec(r["BilledCost"]) for r in rows)
    st, _, day = d.req("GET", "/v1/costs?group_by=day&from=2020-01-01&to=2030-01-01&include_running=false")
    t.ok(st == 200 and total == dec(day["total"]["spent"]),
         f"BilledCost sums exactly to /v1/costs?group_by=day spent ({total})", day.get("total"))
    st, _, team = d.req("GET", "/v1/costs?group_by=team&from=2020-01-01&to=2030-01-01&include_running=false")
    t.ok(st == 200 and total == dec(team["total"]["spent"]),
         "... and to the team totals over whole periods", team.get("total"))
    per_team = {}
    for r in rows:
        per_team[r["BillingAccountId"]] = per_team.get(r["BillingAccountId"], Decimal(0)) + dec(r["BilledCost"])
    api_team = {i["key"]: dec(i["spent"]) for i in team["items"] if dec(i["spent"]) != 0}
    t.ok(per_team == api_team, "per-team sums equal the API's per team", (per_team, api_team))

    # A single UTC month: the export and group_by=day agree exactly for any range.
    st, _, text2 = d.req("GET", "/v1/costs/export?format=focus&from=2026-10-15&to=2026-11-20T12:00:00Z"
                         "&include_running=false", raw=True)
    rows2 = list(csv.DictReader(io.StringIO(text2)))
    st2, _, day2 = d.req("GET", "/v1/costs?group_by=day&from=2026-10-15&to=2026-11-20T12:00:00Z"
                         "&include_running=false")
    t.ok(st == 200 and st2 == 200 and sum(dec(r["BilledCost"]) for r in rows2) == dec(day2["total"]["spent"]),
         "a partial range sums exactly too")
    st, hdr, text5 = d.req("GET", "/v1/costs/export?format=focus&from=2020-01-01&to=2030-01-01", raw=True)
    rows5 = list(csv.DictReader(io.StringIO(text5)))
    t.ok(st == 200 and {r["x_Status"] for r in rows5} == {"completed", "running"}
         and len(rows5) > len(rows) and all(r["x_Status"] == "completed" for r in rows),
         "by default the export holds running allocations' cost so far, marked x_Status=running")
    t.ok(hdr.get("Content-Disposition") == 'attachment; filename="plinth-focus-2020-01-01_2030-01-01.csv"',
         "the export names its file", hdr.get("Content-Disposition"))
    t.ok(all(r["ChargeClass"] == "" for r in rows5), "ChargeClass is null: no row corrects an invoiced period")
    t.ok(all(r["BillingPeriodStart"][:7] == r["ChargePeriodStart"][:7]
             and r["BillingPeriodStart"][8:] == "01T00:00:00Z" for r in rows5),
         "BillingPeriodStart is the calendar month of the day of use")
    st, _, text3 = d.req("GET", "/v1/costs/export?format=focus&team=nlp&from=2020-01-01&to=2030-01-01", raw=True)
    rows3 = list(csv.DictReader(io.StringIO(text3)))
    t.ok(st == 200 and rows3 and all(r["x_Team"] == "nlp" for r in rows3), "?team= narrows the export")
    st, _, tok = d.req("POST", "/v1/tokens", {"name": "vision member", "role": "member", "teams": ["vision"]})
    mem = tok.get("token") if st == 201 else None
    st, _, text4 = d.req("GET", "/v1/costs/export?from=2020-01-01&to=2030-01-01", token=mem, raw=True)
    rows4 = list(csv.DictReader(io.StringIO(text4)))
    t.ok(st == 200 and rows4 and all(r["x_Team"] == "vision" for r in rows4),
         "a member's export holds only its own teams", (st, len(rows4)))
    st, _, _ = d.req("GET", "/v1/costs/export?team=nlp", token=mem)
    t.ok(st == 403, "a member may not export another team", st)

    for q, why in [("format=xml", "unknown format"), ("from=2026-02-01&to=2026-01-01", "to before from"),
                   ("from=yesterday", "bad time"), ("team=Bad%20Team%21", "bad team"),
                   ("month=2026-13", "bad month"), ("include_running=1", "bad include_running")]:
        st, hdr, body = d.req("GET", "/v1/costs/export?" + q)
        t.ok(st == 422 and hdr.get("Content-Type", "").startswith("application/problem+json"),
             f"export refuses {why} with a 422 problem", (st, body))
    st, _, _ = d.req("GET", "/v1/costs/export", token=None)
    t.ok(st == 401, "export needs a token")


def parse_metrics(text):
    fams = {}
    for fam in text_string_to_metric_families(text):
        fams[fam.name] = fam
    return fams


def sample(fams, name, **labels):
    """The value of the sample called `name` with these labels (any family)."""
    for fam in fams.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_metrics(t, d):
    st, hdr, text = d.req("GET", "/metrics", token=None, raw=True)
    t.ok(st == 200 and hdr.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
         "/metrics answers without a token in the text format", (st, hdr.get("Content-Type")))
    try:
        fams = parse_metrics(text)
        t.ok(True, f"prometheus_client parses /metrics ({len(fams)} families)")
    except Exception as e:  # the parser's verdict is the test
        t.ok(False, "prometheus_client parses /metrics", e)
        return
    st, _, teams = d.req("GET", "/v1/teams")
    good = True
    for tm in teams["items"]:
        for metric, field in [("plinth_team_budget", tm["budget"]["amount"]), ("plinth_team_spent", tm["spent"]),
                              ("plinth_team_reserved", tm["reserved"]), ("plinth_team_available", tm["available"])]:
            v = sample(fams, metric, team=tm["id"])
            if v is None or abs(Decimal(str(v)) - dec(field)) > Decimal("0.000001"):
                good = False
                t.ok(False, f"{metric}{{team={tm['id']}}} equals the API", (v, field))
    t.ok(good and len(teams["items"]) > 0, "team budget/spent/reserved/available gauges equal GET /v1/teams")
    t.ok(all(sample(fams, "plinth_team_accrued", team=tm["id"]) is not None for tm in teams["items"]),
         "an accrued gauge per team")
    st, _, gpus = d.req("GET", "/v1/gpu-types")
    t.ok(all(sample(fams, "plinth_gpu_capacity", gpu_type=g["id"]) == g["capacity"]
             and sample(fams, "plinth_gpus_allocated", gpu_type=g["id"]) == g["allocated"] for g in gpus["items"]),
         "GPU capacity and allocated gauges equal GET /v1/gpu-types")
    h = fams.get("plinth_http_request_duration_seconds")
    t.ok(h is not None and h.type == "histogram", "the request latency is a histogram")
    count = sample(fams, "plinth_http_request_duration_seconds_count")
    inf = sample(fams, "plinth_http_request_duration_seconds_bucket", le="+Inf")
    t.ok(count is not None and count > 0 and inf == count, "histogram count equals its +Inf bucket", (count, inf))
    fam = fams.get("plinth_allocations")
    outcomes = {s.labels.get("outcome") for s in fam.samples} if fam else set()
    t.ok({"approved", "budget_exceeded", "capacity_exceeded"} <= outcomes, "allocation outcome counters", outcomes)
    # an allocation refused for budget is counted
    before = sample(fams, "plinth_allocations_total", outcome="budget_exceeded")
    d.req("POST", "/v1/allocations", {"team": "recsys", "project": "p", "gpu_type": "l4-24gb",
                                      "gpu_count": 1, "max_runtime_hours": 168, "purpose": "too big"})
    d.req("PUT", "/v1/teams/tiny", {"display_name": "Tiny", "budget": {"amount": "1", "period": "monthly"},
                                    "alert_thresholds": []})
    st, _, _ = d.req("POST", "/v1/allocations", {"team": "tiny", "project": "p", "gpu_type": "l4-24gb",
                                                 "gpu_count": 1, "max_runtime_hours": 10, "purpose": "x"})
    after = sample(parse_metrics(d.req("GET", "/metrics", token=None, raw=True)[2]),
                   "plinth_allocations_total", outcome="budget_exceeded")
    t.ok(st == 409 and after is not None and before is not None and after >= before + 1,
         "a budget refusal increments plinth_allocations_total{outcome=budget_exceeded}", (st, before, after))


def wait_for(cond, secs):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_alerts(t, d, hooks):
    st, _, g = d.req("GET", "/v1/gpu-types/l4-24gb")
    price = dec(g["price_per_gpu_hour"])
    # budget = 100 GPU-hours of l4: 60 h is 60%, 25 h more is 85%
    st, _, _ = d.req("PUT", "/v1/teams/alerty", {"display_name": "Alert team",
                                                  "budget": {"amount": str(price * 100), "period": "monthly"},
                                                  "alert_thresholds": [0.5, 0.8]})
    t.ok(st in (200, 201), "a team with thresholds 50% and 80%")
    hours = 60
    st, _, a1 = d.req("POST", "/v1/allocations", {"team": "alerty", "project": "p", "gpu_type": "l4-24gb",
                                                  "gpu_count": 1, "max_runtime_hours": hours, "purpose": "a"})
    t.ok(st == 201, "an allocation takes the team past 50%", a1)
    t.ok(wait_for(lambda: len(hooks.of("/ok")) >= 1, 10), "the 50% alert arrives")
    time.sleep(2.5)  # several more passes of the alert loop
    ok = hooks.of("/ok")
    t.ok(len(ok) == 1 and "text" in ok[0] and "alerty" in ok[0]["text"] and ok[0]["threshold"].startswith("0.5"),
         "exactly one 50% alert, with a Slack-compatible text", ok)
    t.ok(wait_for(lambda: len(hooks.of("/flaky")) >= 1, 15) and hooks.flaky_failures == 2,
         "a receiver that failed twice gets it after retries", (hooks.flaky_failures, hooks.of("/flaky")))
    with hooks.lock:
        ctypes = {c for _, _, c in hooks.got}
    t.ok(ctypes == {"application/json"}, "alerts are POSTed as application/json", ctypes)

    st, _, a2 = d.req("POST", "/v1/allocations", {"team": "alerty", "project": "p", "gpu_type": "l4-24gb",
                                                  "gpu_count": 1, "max_runtime_hours": 25,
                                                  "purpose": "b"})
    t.ok(st == 201, "a second allocation takes it past 80%", a2)
    t.ok(wait_for(lambda: len(hooks.of("/ok")) >= 2, 10), "the 80% alert arrives")
    d.stop()
    d.start()
    time.sleep(3.5)
    ok = hooks.of("/ok")
    th = sorted(b["threshold"] for b in ok)
    t.ok(len(ok) == 2 and th[0].startswith("0.5") and th[1].startswith("0.8"),
         "after a restart: still exactly one alert per threshold", th)
    t.ok(wait_for(lambda: len(hooks.of("/flaky")) == 2, 10) and len(hooks.of("/flaky")) == 2,
         "the retried receiver also has exactly one per threshold", len(hooks.of("/flaky")))
    # cancelling does not re-arm an alert in the same period
    d.req("POST", f"/v1/allocations/{a2['id']}/cancel", {})
    d.req("POST", "/v1/allocations", {"team": "alerty", "project": "p", "gpu_type": "l4-24gb",
                                      "gpu_count": 1, "max_runtime_hours": 25, "purpose": "c"})
    time.sleep(2.5)
    t.ok(len(hooks.of("/ok")) == 2, "crossing 80% again in the same period sends nothing new")


def main():
    t = Tap()
    hooks = Hooks()
    with tempfile.TemporaryDirectory(prefix="plinth-costviz-") as tmp:
        d = Daemon(tmp, hooks)
        try:
            d.start()
            test_export(t, d)
            test_metrics(t, d)
            test_alerts(t, d, hooks)
        except Exception as e:
            t.ok(False, "the harness ran to the end", repr(e))
            if d.log and not d.log.closed:
                d.log.flush()
            with open(os.path.join(tmp, "daemon.log"), "rb") as f:
                sys.stdout.write("# " + f.read().decode(errors="replace")[-3000:].replace("\n", "\n# ") + "\n")
        finally:
            d.stop()
    hooks.srv.shutdown()
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
