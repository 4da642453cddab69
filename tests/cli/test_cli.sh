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
for c in serve quote allocate allocations start complete cancel teams team gpu-type gpu-types costs export token version completion audit job; do
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
check_help token --name --role --team create revoke --active
check_help audit --team --actor --action --since --until --limit
check_help job list get --team --limit
check_help version version
check_help gpu-types gpu-types
check_help completion bash zsh
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
run --json --url http://127.0.0.1:1 teams
expect_rc 3 "--json: daemon unreachable still exits 3"
expect_out '"title":"Cannot reach the daemon"' "--json: unreachable prints a problem document on stdout"
expect_out '"detail":"cannot reach http://127.0.0.1:1' "--json: the problem's detail says which URL"
if [ "$(grep -c . "$T/err")" -eq 1 ]; then ok "unreachable: one line on stderr"; else not_ok "unreachable: stderr has $(grep -c . "$T/err") lines"; fi

# --- shell completion (issue 16) ---------------------------------------------------
run completion bash
expect_rc 0 "completion bash"
cp "$T/out" "$T/plinth.bash"
if bash -n "$T/plinth.bash" 2>"$T/err"; then ok "the bash script parses"; else RC=1; not_ok "bash -n"; fi
run completion fish
expect_rc 2 "completion fish is a usage error"
run completion
expect_rc 2 "completion needs a shell"
# comp LINE: the words bash would offer after LINE (a trailing space starts a new word).
comp() {
	bash -c '. "$1"; line=$2
		read -ra COMP_WORDS <<<"$line"
		case $line in *" ") COMP_WORDS+=("");; esac
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$line; COMP_POINT=${#line}
		_plinth plinth "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' comp "$T/plinth.bash" "$1" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
expect_words() { # LINE WORDS...: every WORD is offered after LINE, as a whole word
	line=$1; shift
	comp "$line"
	for w in "$@"; do
		if grep -qx -- "$w" "$T/out"; then ok "complete '$line' offers $w"; else not_ok "complete '$line' lacks $w"; fi
	done
}
bash -c '. "$1"; complete -p plinth' comp "$T/plinth.bash" >"$T/out" 2>"$T/err"; RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
expect_out "-F _plinth" "complete -p plinth names the function"
expect_words "plinth " quote allocate allocations start complete cancel teams costs token submit \
	controller version help completion serve migrate team gpu-type audit job export
expect_words "plinth --url http://x:1 --json " quote team
expect_words "plinth te" team teams
comp "plinth te"
case $OUT in *quote*) not_ok "complete 'plinth te' offers quote";; *) ok "complete 'plinth te' filters by the prefix";; esac
expect_words "plinth team " list get set retire
expect_words "plinth team set ml --" --display-name --budget --period --alert-thresholds --admins --json
expect_words "plinth team set ml --period " monthly quarterly
expect_words "plinth gpu-type " list get set retire
expect_words "plinth gpu-type set h100-80gb --" --name --price --capacity
expect_words "plinth audit --" --team --actor --action --since --until --limit
expect_words "plinth job " list get
expect_words "plinth job list --" --team
expect_words "plinth export -" --format --month -o
expect_words "plinth costs --group-by " team project gpu_type day month
expect_words "plinth allocations --status " approved running completed cancelled expired
expect_words "plinth token create --role " admin finance member service
expect_words "plinth token " create list revoke
expect_words "plinth completion " bash zsh
expect_words "plinth help " quote team
mkdir -p "$T/jobs" && : >"$T/jobs/train.yaml"
expect_words "plinth submit $T/jobs/tr" "$T/jobs/train.yaml"
# zsh (installed by `make test-deps`): the script registers with the real
# completion system (compinit), and its function, run by real zsh with
# compadd and _files recording what they are given, offers the same words.
run completion zsh
expect_rc 0 "completion zsh"
cp "$T/out" "$T/_plinth"
if ! command -v zsh >/dev/null 2>&1; then
	RC=127; not_ok "zsh is not installed (make test-deps installs it)"
else
	if zsh -n "$T/_plinth" 2>"$T/err"; then ok "the zsh script parses"; else RC=1; not_ok "zsh -n"; fi
	zsh -f -c 'autoload -Uz compinit && compinit -u -D && . "$1" && print -r -- "${_comps[plinth]}"' \
		zcomp "$T/_plinth" >"$T/out" 2>"$T/err"
	RC=$?; OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
	expect_out "_plinth" "compinit knows plinth's completion function"
	zexpect() { # N WORD... -- WANT...: words[1..N] with CURRENT=N; every WANT is offered
		zn=$1; shift
		zwords=""
		while [ "$1" != -- ]; do zwords="$zwords '$1'"; shift; done
		shift
		zsh -f -c 'compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
			_files() { print -r -- "<files>"; }
			. "$1"; eval "words=($2)"; CURRENT=$3; _plinth' zcomp "$T/_plinth" "$zwords" "$zn" \
			>"$T/out" 2>"$T/err"
		RC=$?
		for want in "$@"; do
			if grep -qx -- "$want" "$T/out"; then ok "zsh:$zwords offers $want"; else not_ok "zsh:$zwords lacks $want"; fi
		done
	}
	zexpect 2 plinth "" -- quote team gpu-type audit job export completion
	zexpect 5 plinth --url http://x:1 team "" -- list get set retire
	zexpect 4 plinth costs --group-by "" -- team project gpu_type day month
	zexpect 5 plinth gpu-type set h100-80gb - -- --name --price --capacity --json
	zexpect 3 plinth audit - -- --team --actor --action --since --until --limit
	zexpect 3 plinth submit j -- "<files>"
	zexpect 4 plinth export -o "" -- "<files>"
	# The real thing: an interactive zsh on a pseudo-terminal (zsh/zpty), the
	# script installed in $fpath as _plinth, TAB pressed after LINE; what zsh
	# lists is read back (bounded: 5 s per read).
	mkdir -p "$T/zfunc" && cp "$T/_plinth" "$T/zfunc/_plinth"
	cat >"$T/ztab.zsh" <<'ZEOF'
zmodload zsh/zpty || exit 1
zpty -b z "TERM=dumb zsh -f -i" || exit 1
zpty -w z "PS1='> '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; plinth() { :; }; print READY"
all=
for i in {1..50}; do
	zpty -r -t z chunk 2>/dev/null && all+=$chunk
	[[ $all == *READY* ]] && break
	sleep 0.1
done
zpty -w -n z "$2"$'\t'
all=
for i in {1..50}; do
	zpty -r -t z chunk 2>/dev/null && all+=$chunk
	missing=0
	for want in "${@[3,-1]}"; do [[ $all == *"$want"* ]] || missing=1; done
	(( missing )) || break
	sleep 0.1
done
print -r -- "$all"
zpty -d z
ZEOF
	ztab() { # LINE WORD...: TAB after LINE in an interactive zsh lists every WORD
		zline=$1; shift
		timeout 30 zsh -f "$T/ztab.zsh" "$T/zfunc" "$zline" "$@" | tr -d '\r' >"$T/out" 2>"$T/err"
		RC=$?
		for want in "$@"; do
			if grep -qw -- "$want" "$T/out"; then ok "zsh TAB after '$zline' lists $want"; else not_ok "zsh TAB after '$zline' lacks $want"; fi
		done
	}
	ztab "plinth team " retire list get set
	ztab "plinth costs --group-by " month team project gpu_type day
	ztab "plinth audit --" --until --team --actor --action --since --limit
fi
# One source of truth: every option a command's --help names is completed.
"$PLINTH" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' >"$T/commands"
while read -r c; do
	[ "$c" = help ] && continue
	"$PLINTH" "$c" --help 2>/dev/null | sed -n 's/^ *\(-[a-z], \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p' | sort -u >"$T/opts"
	comp "plinth $c --"
	missing=$(grep -vxF -f "$T/out" "$T/opts" | tr '\n' ' ')
	if [ -z "$missing" ]; then ok "completion of $c covers its --help options"; else not_ok "completion of $c lacks: $missing"; fi
done <"$T/commands"

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
expect_out "reason" "refused quote shows its reasons in the table"
# Printed once: the table has the reasons, stderr only says it was refused.
if [ "$(grep -c . "$T/err")" -eq 1 ]; then ok "refused quote: one line on stderr"; else not_ok "refused quote: stderr has $(grep -c . "$T/err") lines"; fi
# What fits instead: 1 x 6.88 x 100 = 688 <= 1000; 1000 / (8 x 6.88) = 18.1686 h (cut to 18.16).
RENEWS=$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)
expect_out "Fits now: 1 GPU for 100 h, or 8 GPUs for 18.16 h. Budget renews $RENEWS." \
	"refused quote says what fits and when the budget renews"
expect_out "Ask: " "refused quote says whom to ask"
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
# The detail's words round to the cent; the exact amounts stay in the members.
expect_err "Budget exceeded: estimated cost 5504.00 USD exceeds the 862.40 USD available" \
	"budget refusal's detail says money in cents, with its currency"
# 862.40 left: 1 GPU for 100 h (688), or 8 GPUs for 862.40 / 55.04 = 15.6686 h.
expect_err "Fits now: 1 GPU for 100 h, or 8 GPUs for 15.66 h. Budget renews $RENEWS." \
	"budget refusal of allocate says what fits"
run quote --team ml --gpu-type h100-80gb --gpus 16 --hours 0.01
expect_rc 1 "quote over the free GPUs exits 1"
expect_out "Free now: h100-80gb (14 GPUs, 6.88 USD/GPU-h)." "capacity refusal lists the free GPU types"
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
if [ "$(kv actual_cost)" = "0.03 USD" ]; then ok "actual_cost 0.0344 shown as 0.03 USD (per second)"; else not_ok "actual_cost '$(kv actual_cost)'"; fi
if [ "$(kv released)" = "137.57 USD" ]; then ok "released 137.5656 shown as 137.57 USD"; else not_ok "released '$(kv released)'"; fi
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
expect_out "999.97 USD" "teams shows ml's available budget (999.9656 rounded)"
case $OUT in *vision*) not_ok "member sees another team";; *) ok "member sees only its team";; esac
run teams ml
expect_rc 0 "teams ml"
if [ "$(kv spent)" = "0.03 USD" ]; then ok "ml spent 0.0344 shown as 0.03 USD"; else not_ok "spent '$(kv spent)'"; fi
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
run --token "$ADMIN" gpu-type set carry-gpu --name Carry --price 99.99995 --capacity 1
expect_rc 0 "gpu-type set carry-gpu"
expect_out "99.99995 USD" "gpu-type get shows the whole price"
run --token "$ADMIN" gpu-type list
expect_out "100.00 USD" "a table rounds 99.99995 half up to 4 decimals, 100.00 (the carry)"
run --json --token "$ADMIN" gpu-type list
expect_flat '"price_per_gpu_hour":"99.99995"' "--json keeps every decimal"
run --token "$ADMIN" gpu-type frobnicate
expect_rc 2 "gpu-type: unknown subcommand"

# Costs.
run costs
expect_rc 0 "costs"
expect_out "TOTAL" "costs prints a total"
expect_out "0.03 USD" "costs shows ml's spend (0.0344 rounded)"
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

# --- issue 16: money with two decimals, errors once, --json refusals, real ids ----
# A price with six decimals and one that rounds half-up: 0.125 x 1 x 1 = 0.125.
code=$(admin_put /v1/gpu-types/t4-16gb '{"name":"T4 16GB","price_per_gpu_hour":"0.125","capacity":4}')
case $code in 200|201) ok "admin PUT gpu type t4-16gb";; *) RC=$code; not_ok "admin PUT gpu type t4: HTTP $code";; esac
code=$(admin_put /v1/gpu-types/a100-40gb '{"name":"A100 40GB","price_per_gpu_hour":"6.883333","capacity":8}')
case $code in 200|201) ok "admin PUT gpu type a100-40gb";; *) RC=$code; not_ok "admin PUT gpu type a100: HTTP $code";; esac
run quote --team ml --gpu-type t4-16gb --gpus 1 --hours 1
expect_rc 0 "quote t4"
if [ "$(kv estimated_cost)" = "0.13 USD" ]; then ok "0.125 is shown half-up as 0.13 USD"; else not_ok "estimated_cost '$(kv estimated_cost)'"; fi
if [ "$(kv price_per_gpu_hour)" = "0.125 USD" ]; then ok "a price per GPU-hour is shown to 4 decimals, 0.125"; else not_ok "price '$(kv price_per_gpu_hour)'"; fi
run --json quote --team ml --gpu-type t4-16gb --gpus 1 --hours 1
expect_flat '"estimated_cost":"0.125"' "--json keeps the full precision"
run quote --team ml --gpu-type a100-40gb --gpus 1 --hours 1.3
# 6.883333 x 1.3 = 8.9483329 -> 8.948333 (the API's six decimals) -> 8.95
if [ "$(kv estimated_cost)" = "8.95 USD" ]; then ok "8.948333 is shown as 8.95 USD"; else not_ok "estimated_cost '$(kv estimated_cost)'"; fi
if [ "$(kv price_per_gpu_hour)" = "6.8833 USD" ]; then ok "the price 6.883333 is shown as 6.8833 USD"; else not_ok "price '$(kv price_per_gpu_hour)'"; fi
run allocate --team ml --project money --gpu-type a100-40gb --gpus 1 --hours 1.3
expect_rc 0 "allocate with a six-decimal price"
A4=$(kv id)
run quote --team ml --gpu-type a100-40gb --gpus 8 --hours 0.01
expect_rc 1 "quote over a100's free GPUs"
expect_out "a100-40gb (7 GPUs, 6.8833 USD/GPU-h)" "a free type's price is shown to 4 decimals"
expect_out "t4-16gb (4 GPUs, 0.125 USD/GPU-h)" "a free type's price keeps 3 decimals"
# No table anywhere shows more than two decimals of money, but for a price per
# GPU-hour (up to four).
# The catalog: the ids to pass as --gpu-type, with prices and free GPUs.
run gpu-types
expect_rc 0 "gpu-types (member)"
expect_out "PRICE/GPU-HOUR" "gpu-types prints a header"
if grep -Eq '^t4-16gb +T4 16GB +0\.125 USD +4 +0 +4 ' "$T/out"; then ok "gpu-types lists t4-16gb: 0.125 USD, 4 of 4 free"; else not_ok "gpu-types lacks the t4-16gb row"; fi
if grep -Eq '^a100-40gb +A100 40GB +6\.8833 USD +8 +1 +7 ' "$T/out"; then ok "gpu-types counts the allocated GPU of a100-40gb"; else not_ok "gpu-types lacks the a100-40gb row"; fi
run --json gpu-types
expect_flat '"price_per_gpu_hour":"6.883333"' "gpu-types --json keeps the full price"
# gpu-types: every price to 2..4 decimals.
run gpu-types
bad=$(grep -Eo '[^ ]+ USD' "$T/out" | grep -Ev '^[0-9]+\.[0-9]{2,4} USD$' | tr '\n' ' ')
if [ -z "$bad" ]; then ok "gpu-types: prices with 2 to 4 decimals"; else not_ok "gpu-types: prices not in 2 to 4 decimals: $bad"; fi
for args in "teams" "teams ml" "allocations" "allocations show $A4" "costs" "costs --group-by gpu_type" "quote --team ml --gpu-type a100-40gb --gpus 1 --hours 1.3"; do
	# shellcheck disable=SC2086
	run $args
	# The price per GPU-hour (a line of its own in a view) has up to 4 decimals.
	if grep -Eq '^price_per_gpu_hour +[0-9]+\.[0-9]{2,4} USD$' "$T/out" ||
	   ! grep -q '^price_per_gpu_hour' "$T/out"; then :; else not_ok "$args: price not in 2 to 4 decimals"; fi
	bad=$(grep -v '^price_per_gpu_hour ' "$T/out" | grep -Eo '[^ ]+ USD' |
		grep -Ev '^-?[0-9]+\.[0-9][0-9] USD$' | tr '\n' ' ')
	if [ -n "$bad" ]; then not_ok "$args: money not in two decimals: $bad"; elif grep -q USD "$T/out"; then ok "$args: money with two decimals"; else not_ok "$args: no money shown"; fi
done
run cancel "$A4"
expect_rc 0 "cancel the six-decimal allocation"

# Errors printed once: the detail already names the field, so no second line.
run quote --team ml --gpu-type no-such-gpu --gpus 1 --hours 1
expect_rc 1 "unknown GPU type"
if [ "$(grep -c . "$T/err")" -eq 1 ]; then ok "a one-field error is one line"; else not_ok "one-field error printed as $(grep -c . "$T/err") lines"; fi
expect_err "plinth: " "the line starts with plinth:"
expect_err "gpu_type" "the line names the field"
run allocate --team ml --project p --gpu-type h100-80gb --gpus 0 --hours 0
expect_rc 1 "two invalid fields"
if [ "$(grep -c 'gpu_count' "$T/err")" -eq 1 ] && [ "$(grep -c 'max_runtime_hours' "$T/err")" -eq 1 ]; then
	ok "each invalid field is named once"
else not_ok "fields not named exactly once"; fi
run allocations show alloc_nosuchallocation00000
expect_rc 1 "not found"
if [ "$(grep -c . "$T/err")" -eq 1 ]; then ok "not found is one line"; else not_ok "not found printed as $(grep -c . "$T/err") lines"; fi

# --json on a refusal or an API error: the problem document on stdout, exit 1.
run --json allocate --team ml --project llm --gpu-type h100-80gb --gpus 8 --hours 100
expect_rc 1 "--json budget refusal exits 1"
expect_flat '"type":"https://plinth.io/problems/budget-exceeded"' "--json budget refusal prints the problem"
expect_flat '"status":409' "the problem carries its status"
expect_flat '"available":"999.9656"' "the problem keeps full precision"
run --json quote --team ml --gpu-type no-such-gpu --gpus 1 --hours 1
expect_rc 1 "--json validation error exits 1"
expect_flat '"errors":[{"field":"gpu_type"' "--json validation error prints the problem with its errors"
run --json allocations show alloc_nosuchallocation00000
expect_rc 1 "--json not found exits 1"
expect_flat '"status":404' "--json not found prints the problem"
run --json teams vision
expect_rc 1 "--json forbidden exits 1"
expect_flat '"status":403' "--json forbidden prints the problem"
run --json quote --team ml --gpu-type h100-80gb --gpus 8 --hours 100
expect_rc 1 "--json refused quote exits 1"
expect_flat '"approved":false' "--json refused quote prints the quote"

# Help examples use ids shaped like the daemon's own (alloc_ + 20, tok_ + 16,
# job_ + 20 characters of [a-z2-7]), never alc_abc123.
TOK_ID=$("$PLINTH" --json --token "$ADMIN" token list | tr -d ' \n\t' | sed -n 's/.*"id":"\(tok_[^"]*\)".*/\1/p' | head -n 1)
shape() { printf '%s' "$1" | sed 's/[a-z2-7]/x/g'; }
ALLOC_SHAPE=$(shape "$A1"); TOK_SHAPE=$(shape "$TOK_ID")
case $ALLOC_SHAPE in xxxxx_xxxxxxxxxxxxxxxxxxxx) ok "real allocation ids look like $A1";; *) not_ok "allocation id '$A1'";; esac
case $TOK_SHAPE in xxx_xxxxxxxxxxxxxxxx) ok "real token ids look like $TOK_ID";; *) not_ok "token id '$TOK_ID'";; esac
"$PLINTH" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' >"$T/commands"
: >"$T/ids"
while read -r c; do
	"$PLINTH" "$c" --help 2>/dev/null | grep -oE '\b[a-z]+_[A-Za-z0-9]*[0-9][A-Za-z0-9]*\b' >>"$T/ids"
done <"$T/commands"
sort -u -o "$T/ids" "$T/ids"
if [ -s "$T/ids" ]; then ok "help examples show ids ($(sort -u "$T/ids" | tr '\n' ' '))"; else RC=0; not_ok "no ids in any help example"; fi
while read -r id; do
	case $id in
	alloc_*) want=$ALLOC_SHAPE;; tok_*) want=$TOK_SHAPE;; job_*) want=xxx_xxxxxxxxxxxxxxxxxxxx;;
	*) want="a real id prefix (alloc_, tok_, job_)";;
	esac
	if [ "$(shape "$id")" = "$want" ]; then ok "help id $id looks real"; else RC=0; not_ok "help id $id does not look like $want"; fi
done <"$T/ids"

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

# token list tells revoked tokens from active ones; --active leaves them out.
run --token "$ADMIN" token list
expect_rc 0 "token list after a revoke"
line=$(grep "^$SVC_ID " "$T/out")
case $line in *" revoked "*) ok "token list: the revoked token's STATUS is revoked";; *) not_ok "token list: no revoked STATUS for $SVC_ID: $line";; esac
case $(grep "^[^ ]* *alice " "$T/out") in *" active "*) ok "token list: alice is active";; *) not_ok "token list: alice not active";; esac
expect_out "REVOKED AT" "token list has a REVOKED AT column"
run --token "$ADMIN" token list --active
expect_rc 0 "token list --active"
case $OUT in *"$SVC_ID"*) not_ok "token list --active shows the revoked token";; *) ok "token list --active hides the revoked token";; esac
expect_out "alice" "token list --active keeps alice"
run --json --token "$ADMIN" token list --active
expect_flat '"status":"active"' "token list --active --json carries status"
case $FLAT in *'"status":"revoked"'*) not_ok "token list --active --json has a revoked token";; *) ok "token list --active --json has no revoked token";; esac

# The audit log: filters, RFC 3339 times, summaries; finance may read it, a member not.
run --token "$ADMIN" token create --name auditor --role finance
FIN=$(kv token)
run --token "$FIN" audit
expect_rc 0 "audit (finance)"
expect_out "AT " "audit prints a table"
expect_out "budget 1000.00 USD monthly" "audit summarises a team's budget"
expect_out "svc (service)" "audit summarises a token"
# Money in the summaries is rounded to cents like every table (--json keeps it whole).
if grep -Eq '(estimated|actual) [0-9]+\.[0-9]{2} USD' "$T/out" &&
	! grep -Eq '(estimated|actual) [0-9]+\.[0-9]{3,}' "$T/out"; then
	ok "audit summaries show money to cents"
else
	not_ok "audit summaries: money not to cents: $(grep -Eo '(estimated|actual) [0-9.]+' "$T/out" | head -3 | tr '\n' ' ')"
fi
run --token "$FIN" audit --action token.revoke
expect_rc 0 "audit --action token.revoke"
expect_out "$SVC_ID" "audit --action shows the revoke"
case $OUT in *"team.create"*) not_ok "audit --action shows other actions";; *) ok "audit --action shows only that action";; esac
case $OUT in *T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z*) ok "audit times are RFC 3339";; *) not_ok "audit: no RFC 3339 time";; esac
run --token "$FIN" audit --team vision --action team.create
expect_rc 0 "audit --team --action"
expect_out "budget 500.00 USD monthly" "audit --team vision shows vision's creation"
case $OUT in *"1000.00"*) not_ok "audit --team vision shows ml";; *) ok "audit --team keeps to the team";; esac
run --token "$FIN" audit --actor alice --action allocation.approve
expect_rc 0 "audit --actor alice"
expect_out "alice" "audit --actor shows alice's approvals"
case $OUT in *"bootstrap admin"*) not_ok "audit --actor shows another actor";; *) ok "audit --actor keeps to the actor";; esac
run --token "$FIN" audit --since 2999-01-01
expect_rc 0 "audit --since in the future"
expect_out "(no audit entries)" "audit --since in the future is empty"
run --token "$FIN" audit --until 2000-01-01
expect_out "(no audit entries)" "audit --until in the past is empty"
run --token "$FIN" audit --limit 3
expect_rc 0 "audit --limit 3"
if [ "$(grep -c 'Z  ' "$T/out")" -eq 3 ]; then ok "audit --limit 3 prints 3 entries"; else not_ok "audit --limit 3 printed $(grep -c 'Z  ' "$T/out")"; fi
expect_out "more entries" "audit --limit says there is more"
run --json --token "$FIN" audit --limit 3
expect_rc 0 "audit --json"
if [ "$(printf '%s' "$FLAT" | grep -o '"seq":' | wc -l)" -eq 3 ]; then ok "audit --json: one document, 3 entries over pages"; else not_ok "audit --json: not 3 entries"; fi
expect_flat '"next_cursor":"' "audit --json carries the cursor to go on"
run --token "$FIN" audit --since yesterday
expect_rc 1 "audit --since yesterday is refused"
expect_err "since" "the refusal names since"
run --token "$FIN" audit --action team.put
expect_rc 1 "audit --action team.put is refused"
expect_err "team.update" "the refusal lists the valid actions"
run --token "$MEMBER" audit
expect_rc 1 "a member may not read the audit log"
run --token "$FIN" audit --limit 0
expect_rc 2 "audit --limit 0"

# Jobs: submitted with the CLI, listed and shown.
printf 'team: ml\nproject: p\nname: cli-job\nframework: pytorch\ngpu_type: h100-80gb\ngpu_count: 1\nmax_runtime_hours: 1\n' >"$T/job.yaml"
run --token "$MEMBER" submit "$T/job.yaml"
expect_rc 0 "submit a job"
JOB=$("$PLINTH" --json --token "$MEMBER" job list | tr -d ' \n\t' | sed -n 's/^{"items":\[{"id":"\([^"]*\)".*/\1/p')
case $JOB in job_*) ok "job list --json: the newest job first";; *) RC=0; not_ok "job list --json: no job id";; esac
run --token "$MEMBER" job list
expect_rc 0 "job list"
expect_out "cli-job" "job list shows the job's name"
expect_out "created" "job list shows its state"
expect_out "alloc_" "job list shows its allocation"
run --token "$MEMBER" job list --team vision
expect_rc 1 "job list for another team is refused to a member"
run --token "$ADMIN" job list --team vision
expect_rc 0 "job list --team vision (admin)"
expect_out "(no jobs)" "vision has no jobs"
run --token "$MEMBER" job get "$JOB"
expect_rc 0 "job get"
expect_out "cli-job" "job get shows the name"
expect_out "apps/ml/cli-job" "job get shows where the manifests are"
run --token "$MEMBER" job get job_nosuchjob0000000000
expect_rc 1 "job get of an unknown job"
run --token "$MEMBER" job
expect_rc 2 "job without a subcommand"
run --token "$MEMBER" job get
expect_rc 2 "job get without an id"

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# $failed of $n failed"
	exit 1
fi
exit 0
