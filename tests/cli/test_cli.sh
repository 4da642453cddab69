#!/bin/sh
# tests/cli/test_cli.sh - drives every `plinth` client command against the real
# daemon on a random port with a fresh data directory, and checks real values:
# exact costs, status transitions, and the exit codes scripts rely on
# (0 ok, 1 refused, 2 usage, 3 unreachable).  Prints TAP.
#
# Usage: test_cli.sh PLINTH_BINARY   (curl must be in PATH, or set CURL)
set -u

PLINTH=${1:?usage: test_cli.sh PLINTH_BINARY}
CURL=${CURL:-curl}
T=$(mktemp -d "${TMPDIR:-/tmp}/plinth-cli.XXXXXX") || exit 1
DAEMON_PID=
n=0
failed=0

cleanup() {
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	echo "# rc=$RC"
	sed 's/^/# stdout: /' "$T/out"
	sed 's/^/# stderr: /' "$T/err"
}

# run ARGS...: runs plinth, keeping stdout, stderr and the exit code.
run() {
	"$PLINTH" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	# JSON without whitespace, for matching "key":"value" whatever the daemon's spacing.
	FLAT=$(tr -d ' \n\t' <"$T/out")
}

expect_rc() { # WANT DESC
	if [ "$RC" -eq "$1" ]; then ok "$2 (exit $1)"; else not_ok "$2: exit $RC, want $1"; fi
}
expect_out() { # NEEDLE DESC
	case $OUT in *"$1"*) ok "$2";; *) not_ok "$2: stdout lacks '$1'";; esac
}
expect_flat() { # NEEDLE DESC
	case $FLAT in *"$1"*) ok "$2";; *) not_ok "$2: JSON lacks '$1'";; esac
}
expect_err() { # NEEDLE DESC
	case $ERR in *"$1"*) ok "$2";; *) not_ok "$2: stderr lacks '$1'";; esac
}
# The value column of a key/value view: `kv id` -> alc_...
kv() { sed -n "s/^$1  *//p" "$T/out" | head -n 1; }

# --- offline: help, usage errors, an unreachable daemon -------------------------

run --help
expect_rc 0 "plinth --help"
for c in serve quote allocate allocations start complete cancel teams team gpu-type costs token version; do
	expect_out "$c" "top-level help lists $c"
done

check_help() { # CMD OPTIONS...
	cmd=$1; shift
	run $cmd --help
	expect_rc 0 "plinth $cmd --help"
	for o in "$@" --url --token --json Example; do
		expect_out "$o" "$cmd --help mentions $o"
	done
}
check_help quote --team --gpu-type --gpus --hours
check_help allocate --team --project --gpu-type --gpus --hours --purpose --label --idempotency-key
check_help allocations --team --status --limit --cursor show
check_help start --at
check_help complete --at
check_help cancel ID
check_help teams TEAM
check_help team list get set retire --display-name --budget --period --alert-thresholds --admins --include-retired
check_help gpu-type list get set retire --name --price --capacity --include-retired
check_help costs --from --to --group-by
check_help token --name --role --team create revoke
check_help version version
run help quote
expect_rc 0 "plinth help quote"
expect_out "--gpu-type" "plinth help quote shows quote's help"

run
expect_rc 2 "no command"
run frobnicate
expect_rc 2 "unknown command"
expect_err "--help" "unknown command hints at --help"
run quote --gpu-type h100-80gb --gpus 1 --hours 1
expect_rc 2 "quote without --team"
expect_err "--team" "missing option is named"
expect_err "plinth quote --help" "usage error hints at the command's --help"
run quote --team ml --gpu-type h100-80gb --gpus two --hours 1
expect_rc 2 "quote --gpus two"
run quote --team ml --gpu-type h100-80gb --gpus 1 --hours 1.5x
expect_rc 2 "quote --hours 1.5x"
run quote --bogus
expect_rc 2 "unknown option"
expect_err "--bogus" "unknown option is named"
run allocate --team ml --project p --gpu-type g --gpus 1 --hours 1 --label novalue
expect_rc 2 "allocate --label without ="
run allocate --team ml --project p --gpu-type g --gpus 1 --hours 1 --idempotency-key "a b"
expect_rc 2 "allocate --idempotency-key with a space"
run costs --group-by week
expect_rc 2 "costs --group-by week"
run start
expect_rc 2 "start without an ID"
run token
expect_rc 2 "token without a subcommand"
run version
expect_rc 0 "version"
expect_out "plinth " "version prints plinth VERSION"
run --url http://127.0.0.1:1 teams
expect_rc 3 "daemon unreachable"
expect_err "cannot reach http://127.0.0.1:1" "unreachable says which URL"
expect_err "Connection refused" "unreachable says why"

# --- the real daemon ----------------------------------------------------------------

ADMIN=plt_test_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
PLINTH_ADMIN_TOKEN=$ADMIN "$PLINTH" serve --listen 127.0.0.1:0 --data "$T/data" \
	--ready-file "$T/ready" >"$T/daemon.out" 2>"$T/daemon.log" &
DAEMON_PID=$!
i=0
while [ ! -s "$T/ready" ] && [ $i -lt 200 ]; do
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then break; fi
	sleep 0.1
	i=$((i + 1))
done
if [ ! -s "$T/ready" ]; then
	echo "not ok $((n + 1)) - daemon did not become ready"
	sed 's/^/# daemon: /' "$T/daemon.log" | tail -n 20
	echo "1..$((n + 1))"
	exit 1
fi
URL=$(head -n 1 "$T/ready")
ok "daemon ready at $URL"
export PLINTH_URL="$URL"
unset PLINTH_TOKEN

# Admin setup with curl (deliberately not through the client under test).
admin_put() { # PATH JSON
	"$CURL" -s -o "$T/curl.out" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
		-H 'Content-Type: application/json' --data "$2" "$URL$1"
}
code=$(admin_put /v1/teams/ml '{"display_name":"Machine Learning","budget":{"amount":"1000","period":"monthly"}}')
if [ "$code" = 201 ]; then ok "admin PUT team ml"; else RC=$code; not_ok "admin PUT team ml: HTTP $code"; cat "$T/curl.out"; fi
code=$(admin_put /v1/teams/vision '{"display_name":"Vision","budget":{"amount":"500","period":"monthly"}}')
if [ "$code" = 201 ]; then ok "admin PUT team vision"; else RC=$code; not_ok "admin PUT team vision: HTTP $code"; fi
code=$(admin_put /v1/gpu-types/h100-80gb '{"name":"H100 80GB","price_per_gpu_hour":"6.88","capacity":16}')
case $code in 200|201) ok "admin PUT gpu type h100-80gb";; *) RC=$code; not_ok "admin PUT gpu type: HTTP $code";; esac

# Tokens.
run --token "$ADMIN" token create --name alice --role member --team ml
expect_rc 0 "token create (member of ml)"
expect_err "only time" "token create warns the secret is shown once"
MEMBER=$(kv token)
case $MEMBER in plt_*) ok "token create prints the secret";; *) not_ok "no secret in output";; esac
expect_out "member" "token create shows the role"
run --json --token "$ADMIN" token create --name svc --role service
expect_rc 0 "token create --json (service)"
expect_flat '"role":"service"' "token create --json is the raw response"
SERVICE=$(printf '%s' "$FLAT" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
case $SERVICE in plt_*) ok "token create --json carries the secret";; *) not_ok "no secret in JSON";; esac
run --token "$MEMBER" token create --name mallory --role admin
expect_rc 1 "member may not create tokens"
expect_err "plinth: " "refusal is printed as plinth: title"
run --token "$ADMIN" token list
expect_rc 0 "token list"
expect_out "alice" "token list shows alice"
case $MEMBER in "") not_ok "no member secret to look for";; *) case $OUT in *"$MEMBER"*) not_ok "token list leaks a secret";; *) ok "token list shows no secret";; esac;; esac
run --token wrong-token teams
expect_rc 1 "bad token is refused"
run teams
expect_rc 1 "missing token is refused"
expect_err "PLINTH_TOKEN" "missing token hints at PLINTH_TOKEN"

export PLINTH_TOKEN="$MEMBER"

# Quotes: 2 x 6.88 x 10 = 137.60 exactly.
run quote --team ml --gpu-type h100-80gb --gpus 2 --hours 10
expect_rc 0 "quote approved"
expect_out "137.60 USD" "quote estimated cost 137.60 USD"
if [ "$(kv approved)" = yes ]; then ok "quote says approved yes"; else not_ok "quote approved: '$(kv approved)'"; fi
expect_out "1000.00 USD" "quote shows the available budget"
run quote --json --team ml --gpu-type h100-80gb --gpus 2 --hours 0.1
expect_rc 0 "quote --json with --hours 0.1"
expect_flat '"estimated_cost":"1.376"' "0.1 h is sent exactly: 2 x 6.88 x 0.1 = 1.376"
expect_flat '"approved":true' "quote --json approved true"
run quote --team ml --gpu-type h100-80gb --gpus 8 --hours 100
expect_rc 1 "quote over budget exits 1"
expect_out "5504.00 USD" "refused quote still shows 8 x 6.88 x 100 = 5504.00"
expect_err "reason" "refused quote prints its reasons"
run quote --team ml --gpu-type no-such-gpu --gpus 1 --hours 1
expect_rc 1 "quote with an unknown GPU type"
expect_err "gpu_type" "422 names the gpu_type field"

# Allocate.
run allocate --team ml --project llm --gpu-type h100-80gb --gpus 2 --hours 10 \
	--purpose "cli test" --label run=1 --idempotency-key key-1
expect_rc 0 "allocate"
A1=$(kv id)
case $A1 in ?*) ok "allocate prints an id ($A1)";; *) not_ok "allocate printed no id";; esac
if [ "$(kv status)" = approved ]; then ok "new allocation is approved"; else not_ok "status '$(kv status)'"; fi
if [ "$(kv estimated_cost)" = "137.60 USD" ]; then ok "allocation estimated_cost 137.60 USD"; else not_ok "estimated_cost '$(kv estimated_cost)'"; fi
expect_out "run=1" "allocation shows its label"
run allocate --json --team ml --project llm --gpu-type h100-80gb --gpus 2 --hours 10 \
	--purpose "cli test" --label run=1 --idempotency-key key-1
expect_rc 0 "allocate again with the same idempotency key"
expect_flat "\"id\":\"$A1\"" "same key returns the first allocation"
run allocate --team ml --project llm --gpu-type h100-80gb --gpus 2 --hours 5 --idempotency-key key-1
expect_rc 1 "same key, other body is refused"
run allocate --team ml --project llm --gpu-type h100-80gb --gpus 8 --hours 100
expect_rc 1 "allocate over budget exits 1"
expect_err "available" "budget refusal says what is available"
run allocate --team vision --project cv --gpu-type h100-80gb --gpus 1 --hours 1
expect_rc 1 "member may not allocate for another team"
run allocate --team ml --project llm --gpu-type h100-80gb --gpus 0 --hours 1
expect_rc 1 "allocate 0 GPUs is a validation error"
expect_err "gpu_count" "validation error names gpu_count"

# Allocations.
run allocations
expect_rc 0 "allocations"
expect_out "$A1" "allocations lists the allocation"
expect_out "ESTIMATED" "allocations prints a header"
expect_out "137.60 USD" "allocations shows the estimated cost"
run allocations --json --team ml --status approved --limit 10
expect_rc 0 "allocations --json with filters"
expect_flat "\"id\":\"$A1\"" "filtered list has the allocation"
expect_flat '"next_cursor":' "list has next_cursor"
run allocations --status completed
expect_rc 0 "allocations --status completed"
case $OUT in *"$A1"*) not_ok "completed filter shows an approved allocation";; *) ok "status filter filters";; esac
run allocations show "$A1"
expect_rc 0 "allocations show"
if [ "$(kv id)" = "$A1" ]; then ok "show prints the allocation"; else not_ok "show id '$(kv id)'"; fi
run allocations show no-such-id
expect_rc 1 "show unknown id exits 1"

# Lifecycle: the member starts at the server's clock; only a service token
# (the job watcher) or an admin may report a time, and never one more than
# 5 s ahead.  9 s of use: 2 x 6.88 x 9 s = 0.0344.
run complete "$A1"
expect_rc 1 "complete before start is a conflict"
run start "$A1" --at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
expect_rc 1 "a member may not report started_at"
expect_err "service or admin" "the refusal says who may report a time"
run start "$A1"
expect_rc 0 "start"
if [ "$(kv status)" = running ]; then ok "started allocation is running"; else not_ok "status '$(kv status)'"; fi
STARTED=$(kv started_at)
END=$(date -u -d "$STARTED 9 seconds" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
case $END in ????-??-??T*Z) ok "end time $END";; *) not_ok "cannot compute end from '$STARTED'";; esac
run complete "$A1" --at "$END"
expect_rc 1 "a member may not report ended_at"
# Until END is at most 4 s ahead of the clock (bounded: 15 s).
END_S=$(date -u -d "$END" +%s 2>/dev/null || echo 0)
i=0
while [ "$(date -u +%s)" -lt $((END_S - 4)) ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
run --token "$SERVICE" complete "$A1" --at "$END"
expect_rc 0 "complete --at (service token)"
if [ "$(kv status)" = completed ]; then ok "completed"; else not_ok "status '$(kv status)'"; fi
if [ "$(kv actual_cost)" = "0.0344 USD" ]; then ok "actual_cost 0.0344 USD (per second)"; else not_ok "actual_cost '$(kv actual_cost)'"; fi
if [ "$(kv released)" = "137.5656 USD" ]; then ok "released 137.5656 USD"; else not_ok "released '$(kv released)'"; fi
run --json --token "$SERVICE" complete "$A1" --at "$END"
expect_rc 0 "complete again is idempotent"
expect_flat '"actual_cost":"0.0344"' "repeat charges the same"
run start "$A1"
expect_rc 1 "start after complete is a conflict"
expect_err "plinth: " "conflict is reported"

run allocate --team ml --project vision-exp --gpu-type h100-80gb --gpus 1 --hours 2
expect_rc 0 "second allocation"
A2=$(kv id)
if [ "$(kv estimated_cost)" = "13.76 USD" ]; then ok "estimated 1 x 6.88 x 2 = 13.76"; else not_ok "estimated '$(kv estimated_cost)'"; fi
run cancel "$A2"
expect_rc 0 "cancel"
if [ "$(kv status)" = cancelled ]; then ok "cancelled"; else not_ok "status '$(kv status)'"; fi
if [ "$(kv released)" = "13.76 USD" ]; then ok "cancel releases 13.76 USD"; else not_ok "released '$(kv released)'"; fi
run cancel "$A2"
expect_rc 0 "cancel again is idempotent"
run start "$A2"
expect_rc 1 "start after cancel is a conflict"

# Teams: spent 0.0344, nothing reserved, 999.9656 available (tables round
# to two decimals, --json keeps every one).
run teams
expect_rc 0 "teams"
expect_out "AVAILABLE" "teams prints a header"
expect_out "999.97 USD" "teams shows ml's available budget, two decimals"
case $OUT in *vision*) not_ok "member sees another team";; *) ok "member sees only its team";; esac
run teams ml
expect_rc 0 "teams ml"
if [ "$(kv spent)" = "0.03 USD" ]; then ok "ml spent 0.03 USD (0.0344)"; else not_ok "spent '$(kv spent)'"; fi
if [ "$(kv reserved)" = "0.00 USD" ]; then ok "ml reserved 0.00 USD"; else not_ok "reserved '$(kv reserved)'"; fi
if [ "$(kv budget)" = "1000.00 USD" ]; then ok "ml budget 1000.00 USD"; else not_ok "budget '$(kv budget)'"; fi
run --json teams ml
expect_rc 0 "teams ml --json"
expect_flat '"available":"999.9656"' "teams --json available"
run teams vision
expect_rc 1 "member may not see another team"
run --token "$ADMIN" teams
expect_rc 0 "admin teams"
expect_out "vision" "admin sees every team"

# team / gpu-type (issue 16): set creates with PUT, changes only what it names
# with PATCH, retire stops new allocations; the old `teams` is an alias.
run teams create speech
expect_rc 2 "teams create is a usage error"
expect_err "plinth team set speech" "teams create points to team set"
run --token "$ADMIN" team set speech --budget 40000
expect_rc 2 "team set of a new team without all fields"
expect_err "needs --display-name --period" "names the missing options"
run --token "$ADMIN" team get speech
expect_rc 1 "the refused set created nothing"
run --token "$ADMIN" team set speech --display-name Speech --budget 40000.125 --period quarterly \
	--admins jane@example.com,user:default/bob --alert-thresholds 0.5,0.9
expect_rc 0 "team set creates speech"
if [ "$(kv budget)" = "40000.13 USD" ]; then ok "budget rounded half up to 40000.13 USD"; else not_ok "budget '$(kv budget)'"; fi
if [ "$(kv admins)" = "jane@example.com,user:default/bob" ]; then ok "admins shown"; else not_ok "admins '$(kv admins)'"; fi
run --json --token "$ADMIN" team set speech --budget 45000
expect_rc 0 "team set --budget alone"
expect_flat '"budget":{"amount":"45000.00","period":"quarterly"}' "the period is kept"
expect_flat '"display_name":"Speech"' "the name is kept"
expect_flat '"alert_thresholds":[0.5,0.9]' "the thresholds are kept"
expect_flat '"admins":["jane@example.com","user:default/bob"]' "the admins are kept"
run --token "$ADMIN" team set speech --admins "not an address"
expect_rc 1 "a bad admin is refused"
expect_err "admins[0]" "the refusal names admins[0]"
run --token "$ADMIN" team set speech
expect_rc 2 "team set with no field"
run team set speech --budget 1
expect_rc 1 "a member may not set a team"
run --token "$ADMIN" team list
expect_rc 0 "team list"
expect_out "speech" "team list shows speech"
expect_out "45000.00 USD" "team list shows the budget with two decimals"
run --token "$ADMIN" team retire speech
expect_rc 0 "team retire"
if [ -n "$(kv retired_at)" ] && [ "$(kv retired_at)" != "-" ]; then ok "retired_at set"; else not_ok "retired_at '$(kv retired_at)'"; fi
run --token "$ADMIN" team list
case $OUT in *speech*) not_ok "a retired team is listed";; *) ok "team list hides a retired team";; esac
run --token "$ADMIN" team list --include-retired
expect_out "retired" "team list --include-retired shows it as retired"
run --token "$ADMIN" quote --team speech --gpu-type h100-80gb --gpus 1 --hours 1
expect_rc 1 "a retired team gets no quote"
expect_err "retired" "the refusal says retired"
run --token "$ADMIN" team set speech --budget 1
expect_rc 1 "a retired team cannot be changed"
expect_err '"retired_at": null' "the refusal says how to reactivate"
run --token "$ADMIN" gpu-type list
expect_rc 0 "gpu-type list"
expect_out "PRICE SOURCE" "gpu-type list prints a header"
expect_out "6.88 USD" "gpu-type list shows the price"
SRC=$("$PLINTH" --json --token "$ADMIN" gpu-type get h100-80gb | tr -d ' \n\t' | sed -n 's/.*"price_source":"\([^"]*\)".*/\1/p')
run --json --token "$ADMIN" gpu-type set h100-80gb --capacity 64 --price 6.88
expect_rc 0 "gpu-type set --capacity with the same price"
expect_flat '"capacity":64' "capacity changed"
expect_flat "\"price_source\":\"$SRC\"" "the price's provenance is kept"
run --token "$ADMIN" gpu-type set b200-192gb --price 11.25
expect_rc 2 "gpu-type set of a new type without all fields"
expect_err "needs --name --capacity" "names the missing options"
run --token "$ADMIN" gpu-type set b200-192gb --name "NVIDIA B200" --price 11.25 --capacity 8
expect_rc 0 "gpu-type set creates b200-192gb"
if [ "$(kv available)" = "8" ]; then ok "b200 has 8 available"; else not_ok "available '$(kv available)'"; fi
run --token "$ADMIN" gpu-type set b200-192gb --capacity x
expect_rc 2 "a capacity that is not a number"
run --token "$ADMIN" gpu-type retire b200-192gb
expect_rc 0 "gpu-type retire"
if [ "$(kv available)" = "0" ]; then ok "a retired type has none available"; else not_ok "available '$(kv available)'"; fi
run --token "$ADMIN" gpu-type list
case $OUT in *b200*) not_ok "a retired type is listed";; *) ok "gpu-type list hides a retired type";; esac
run --token "$ADMIN" allocate --team ml --project p --gpu-type b200-192gb --gpus 1 --hours 1
expect_rc 1 "no allocation of a retired type"
expect_err "retired" "the refusal says retired"
run --token "$ADMIN" gpu-type set carry-gpu --name Carry --price 99.995 --capacity 1
expect_rc 0 "gpu-type set carry-gpu"
expect_out "99.995 USD" "gpu-type get shows the whole price"
run --token "$ADMIN" gpu-type list
expect_out "100.00 USD" "a table rounds 99.995 half up to 100.00 (the carry)"
run --json --token "$ADMIN" gpu-type list
expect_flat '"price_per_gpu_hour":"99.995"' "--json keeps every decimal"
run --token "$ADMIN" gpu-type frobnicate
expect_rc 2 "gpu-type: unknown subcommand"

# Costs.
run costs
expect_rc 0 "costs"
expect_out "TOTAL" "costs prints a total"
expect_out "0.0344 USD" "costs shows ml's spend"
run costs --group-by project
expect_rc 0 "costs --group-by project"
expect_out "llm" "costs grouped by project shows llm"
run --json costs --group-by gpu_type
expect_rc 0 "costs --json"
expect_flat '"group_by":"gpu_type"' "costs --json group_by"
expect_flat '"key":"h100-80gb"' "costs by gpu type has h100-80gb"
expect_flat '"spent":"0.0344"' "costs --json spent"
run --json --token "$ADMIN" costs --from 2000-01-01 --to 2000-02-01
expect_rc 0 "costs for a past range"
expect_flat '"items":[]' "nothing was spent in 2000"

# Terminal injection (issue 11, finding 10): a purpose and a problem field
# holding ESC sequences (screen clear, window title), CR and the C1 CSI
# (U+009B) reach the CLI through the API; nothing it prints may carry them.
# (Labels follow the Kubernetes label syntax, so the daemon refuses control
# characters in them outright.)
ESC=$(printf '\033'); CR=$(printf '\r'); CSI=$(printf '\302\233')
admin_post() { # PATH JSON
	"$CURL" -s -o "$T/curl.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
		-H 'Content-Type: application/json' --data "$2" "$URL$1"
}
code=$(admin_post /v1/allocations '{"team":"ml","project":"evil","gpu_type":"h100-80gb","gpu_count":1,"max_runtime_hours":1,"purpose":"\u001b[2J\u001b]0;pwned\u0007ok\rFAKE \u009b31m caf\u00e9 \u2713 \ud83d\ude00","labels":{"k":"v"}}')
A3=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$T/curl.out")
if [ "$code" = 201 ] && [ -n "$A3" ]; then ok "allocation with escape sequences stored"; else RC=$code; not_ok "admin POST allocation: HTTP $code $(cat "$T/curl.out")"; fi
no_controls() { # DESC: stdout and stderr of the last run hold no ESC, CR or C1 CSI
	case "$OUT$ERR" in
	*"$ESC"*|*"$CR"*|*"$CSI"*) not_ok "$1: control characters reach the terminal";;
	*) ok "$1: no ESC, CR or C1 bytes";;
	esac
}
run allocations show "$A3"
expect_rc 0 "show the allocation with escape sequences"
no_controls "allocations show"
expect_out '\u001b[2J' "the purpose is shown neutralised"
expect_out "$(printf 'caf\303\251 \342\234\223 \360\237\230\200')" "UTF-8 text is kept intact"
run --json allocations show "$A3"
no_controls "allocations show --json"
run allocations --team ml
no_controls "allocations list"
run allocate --team ml --project p --gpu-type h100-80gb --gpus 1 --hours 1 \
	--label "${ESC}[2J${CR}k=v"
expect_rc 1 "a label with control characters is refused"
no_controls "label problem details"
# A message that quotes user text: a job file whose key holds an escape
# sequence (the CLI refuses the unknown key itself, naming it).
printf 'team: ml\nproject: p\nname: j\nframework: pytorch\ngpu_type: h100-80gb\ngpu_count: 1\nmax_runtime_hours: 1\n"\\e[2J\\rk": 1\n' >"$T/evil-job.yaml"
run submit "$T/evil-job.yaml"
expect_rc 2 "an error that names an escape-laden key"
no_controls "error details"
expect_err '\u001b[2J' "the key is shown neutralised"

# Service tokens act for any team; revoking a token refuses it at once.
run --token "$SERVICE" quote --team vision --gpu-type h100-80gb --gpus 1 --hours 1
expect_rc 0 "service token quotes for any team"
SVC_ID=$("$PLINTH" --json --token "$ADMIN" token list | tr -d ' \n\t' | sed 's/},{/}\n{/g' |
	grep '"name":"svc"' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
case $SVC_ID in ?*) ok "found the service token id";; *) RC=0; not_ok "no id for the service token";; esac
run --token "$ADMIN" token revoke "$SVC_ID"
expect_rc 0 "token revoke"
run --token "$SERVICE" quote --team vision --gpu-type h100-80gb --gpus 1 --hours 1
expect_rc 1 "a revoked token is refused"

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# $failed of $n failed"
	exit 1
fi
exit 0
