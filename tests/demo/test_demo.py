"""
tests/demo/test_demo.py - `plinth serve --demo` (what `make run` starts) in a
fresh temporary directory, checked through the HTTP API as its three people
would see it: five teams with monthly and quarterly budgets 30-95 %
committed, one close to its limit, one past an alert threshold with the
alerter's record of it (read from the database: alerts have no API), a
budget refusal in the audit log, about three months of history with
running and approved allocations of catalog GPU types and MLflow-style run
names, the ledger's invariants, the printed tokens of the three people, each
team's admins (a refused quote in the CLI says whom to ask), and a second
start that writes nothing.  Prints TAP.

Usage: test_demo.py PLINTH_BINARY
"""
import json
import os
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from plinthtest import Daemon, Tap  # noqa: E402

ADMIN = "demo-test-admin-token-0123456789"
RUN_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{3}$")


def call(base, path, token=ADMIN):
    r = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def pages(base, path, token=ADMIN):
    """Every item of a cursor-paged list (at most 100 pages)."""
    items, cursor = [], None
    for _ in range(100):
        sep = "&" if "?" in path else "?"
        st, body = call(base, path + (f"{sep}cursor={cursor}" if cursor else ""), token)
        if st != 200:
            raise RuntimeError(f"GET {path}: {st} {body}")
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items
    raise RuntimeError(f"GET {path}: more than 100 pages")


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


def printed_tokens(log):
    """{role: secret} from the start-up lines 'ROLE token ... : plt_...'."""
    out = {}
    for line in log.splitlines():
        m = re.match(r"^(admin|member|finance) token .*: (plt_\S+|\S{16,})$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def main(argv):
    t = Tap()
    d = Daemon(argv[1], ADMIN, args=("--demo",))
    try:
        check(t, d)
        ask(t, d, argv[1])
        again(t, d, argv[1])
    finally:
        d.stop()
        d.cleanup()
    return t.done()


def check(t, d):
    base, now = d.base, datetime.now(timezone.utc)
    log = open(d.log_path).read()
    tokens = printed_tokens(log)
    t.ok(set(tokens) == {"member", "finance"} and "for Maya Chen" in log and "for Dana Okafor" in log,
         "the member's and finance's tokens are printed at start, with whose they are", log[:2000])

    st, body = call(base, "/v1/teams")
    teams = {x["id"]: x for x in body["items"]} if st == 200 else {}
    t.ok(len(teams) == 5 and {x["budget"]["period"] for x in teams.values()} == {"monthly", "quarterly"},
         "five teams with monthly and quarterly budgets", body)
    ratio = {k: (Decimal(x["spent"]) + Decimal(x["reserved"])) / Decimal(x["budget"]["amount"])
             for k, x in teams.items()}
    t.note("committed/budget: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(ratio.items())))
    t.ok(all(Decimal("0.30") <= r <= Decimal("0.95") for r in ratio.values()),
         "every team has committed 30-95 % of its current period's budget", ratio)
    close = [k for k, r in ratio.items() if r >= Decimal("0.90")]
    t.ok(len(close) == 1, f"one team is close to its limit ({close})", ratio)
    over = [k for k, x in teams.items() if any(ratio[k] >= Decimal(str(th)) for th in x["alert_thresholds"])]
    t.ok(over, f"teams past an alert threshold: {over}")

    # The alerter's record (no API): every crossed threshold of the current period was sent.
    db = sqlite3.connect(os.path.join(os.path.dirname(d.log_path), "data", "plinth.db"))
    rows = db.execute("SELECT team_id, period_start, threshold_ppm, delivered_at, crossed_at"
                      " FROM alerts").fetchall()
    db.close()
    for k in over:
        ps = int(ts(teams[k]["period_start"]).timestamp())
        crossed = [int(round(th * 1e6)) for th in teams[k]["alert_thresholds"] if ratio[k] >= Decimal(str(th))]
        got = {r[2] for r in rows if r[0] == k and r[1] == ps and r[3] > 0 and ps <= r[4] <= now.timestamp()}
        t.ok(set(crossed) <= got, f"{k}: an alert was recorded and delivered for each crossed threshold "
             f"{crossed}", rows)

    # A real refusal, by the data scientist, in the audit log.
    audit = pages(base, "/v1/audit?team=forecasting&limit=500")
    refused = [e for e in audit if e["action"] == "allocation.refuse"]
    t.ok(len(refused) == 1 and refused[0]["after"]["reason"] == "budget"
         and refused[0]["actor"]["name"].startswith("Maya Chen")
         and Decimal(refused[0]["after"]["estimated_cost"]) > Decimal(refused[0]["after"]["available"]),
         "the audit log holds the data scientist's budget refusal with its figures", refused)
    t.ok(all(now - timedelta(minutes=30) <= ts(e["at"]) <= now for e in refused),
         "... made minutes ago", [e["at"] for e in refused])

    # History, live work, names.
    allocs = pages(base, "/v1/allocations?limit=500")
    by = {}
    for a in allocs:
        by.setdefault(a["status"], []).append(a)
    oldest = min(ts(a["approved_at"]) for a in allocs) if allocs else now
    t.note(f"{len(allocs)} allocations: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(by.items())))
    t.ok(timedelta(days=85) <= now - oldest <= timedelta(days=95) and len(by.get("completed", [])) >= 150,
         f"about three months of completed allocations (oldest {oldest:%Y-%m-%d})", len(allocs))
    t.ok(len(by.get("running", [])) >= 3 and len(by.get("approved", [])) >= 1,
         "allocations are running and approved now")
    t.ok(all(a["team"] in teams for a in allocs), "every allocation is a team's")
    st, body = call(base, "/v1/gpu-types")
    gpus = {g["id"]: g for g in body["items"]} if st == 200 else {}
    t.ok(all(a["gpu_type"] in gpus and a["price_per_gpu_hour"] == gpus[a["gpu_type"]]["price_per_gpu_hour"]
             for a in allocs) and len({a["gpu_type"] for a in allocs}) >= 5,
         "allocations use the catalog's GPU types at the catalog's prices")
    t.ok(all(RUN_NAME.match(a["labels"].get("mlflow-run", "")) and a["labels"]["mlflow-run"] in a["purpose"]
             for a in allocs), "every job has an MLflow-style run name", allocs[:1])

    # The ledger's invariants, recomputed from the allocations.
    for k, x in sorted(teams.items()):
        mine = [a for a in allocs if a["team"] == k and a["period_start"] == x["period_start"]]
        reserved = sum(Decimal(a["estimated_cost"]) for a in mine if a["status"] in ("approved", "running"))
        spent = sum(Decimal(a["actual_cost"]) for a in mine if a["status"] == "completed")
        t.ok(reserved == Decimal(x["reserved"]) and spent == Decimal(x["spent"])
             and Decimal(x["spent"]) + Decimal(x["reserved"]) <= Decimal(x["budget"]["amount"]),
             f"{k}: reserved and spent equal its allocations' sums, within budget",
             (reserved, x["reserved"], spent, x["spent"]))
    for g in gpus.values():
        held = sum(a["gpu_count"] for a in allocs if a["gpu_type"] == g["id"] and a["status"] in ("approved", "running"))
        if held != g["allocated"] or g["allocated"] > g["capacity"]:
            t.ok(False, f"{g['id']}: allocated equals the live allocations' GPUs, within capacity",
                 (held, g["allocated"], g["capacity"]))
            break
    else:
        t.ok(True, "every GPU type: allocated equals the live allocations' GPUs, within capacity")

    # The three people can log in, each seeing what the role allows.
    st, body = call(base, "/v1/teams", tokens.get("member", "x"))
    t.ok(st == 200 and [x["id"] for x in body["items"]] == ["forecasting"],
         "the data scientist's token sees its team, forecasting", (st, body))
    st, body = call(base, "/v1/costs?group_by=team", tokens.get("finance", "x"))
    t.ok(st == 200 and len(body["items"]) == 5, "the finance token reads every team's costs", st)
    st, _ = call(base, "/v1/tokens", tokens.get("finance", "x"))
    t.ok(st == 403, "... but may not manage tokens", st)


def ask(t, d, binary):
    """Every team names one or two admins (e-mails at an example domain), so the
    data scientist's refused quote in the CLI says whom to ask."""
    st, body = call(d.base, "/v1/teams")
    admins = {x["id"]: x.get("admins") for x in body.get("items", [])} if st == 200 else {}
    t.ok(len(admins) == 5 and all(isinstance(a, list) and 1 <= len(a) <= 2 and
                                  all(re.fullmatch(r"[a-z.]+@[a-z]+\.example", e) for e in a)
                                  for a in admins.values()),
         "every demo team has one or two admins at an example domain", admins)
    member = printed_tokens(open(d.log_path).read()).get("member", "x")
    env = dict(os.environ, PLINTH_URL=d.base, PLINTH_TOKEN=member)
    # 64 L4s for 48 h cost about 5127 USD: forecasting has well under 10 % of 8000 left.
    r = subprocess.run([binary, "quote", "--team", "forecasting", "--gpu-type", "l4-24gb",
                        "--gpus", "64", "--hours", "48"], env=env, capture_output=True, text=True,
                       timeout=60)
    names = admins.get("forecasting") or ["?"]
    want = "Ask: " + (", ".join(names[:-1]) + " or " if len(names) > 1 else "") + names[-1] + "."
    t.ok(r.returncode == 1 and want in r.stdout.splitlines(),
         f"a refused quote in the demo says whom to ask ({want})", (r.returncode, r.stdout, r.stderr))


def again(t, d, binary):
    """A second start on the same data directory is a no-op that prints the same tokens."""
    tmp = os.path.dirname(d.log_path)
    before = pages(d.base, "/v1/allocations?limit=500")
    first = printed_tokens(open(d.log_path).read())
    d.stop()
    os.unlink(os.path.join(tmp, "ready"))  # the first daemon's address
    d2 = Daemon(binary, ADMIN, tmp=tmp, args=("--demo",))
    try:
        after = pages(d2.base, "/v1/allocations?limit=500")
        t.ok(len(after) == len(before), "a second start seeds nothing", (len(before), len(after)))
        t.ok(printed_tokens(open(d2.log_path).read()) == first, "... and prints the same tokens")
    finally:
        d2.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
