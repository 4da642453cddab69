#!/bin/sh
# The daemon runs as an unprivileged user: it starts, serves authenticated
# requests, keeps its files owner-only (token hashes live in the database)
# and stops cleanly on SIGTERM.  As root the test drops to `nobody` with
# runuser; as another user it simply runs as that user.  TAP output.
set -u
bin=${PLINTH_BIN:?PLINTH_BIN must name the plinth binary}
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
n=0
fails=0
check() { # check DESCRIPTION COMMAND...
	n=$((n + 1))
	d=$1
	shift
	if "$@"; then echo "ok $n - $d"; else echo "not ok $n - $d"; fails=$((fails + 1)); fi
}
echo "1..7"
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
run=""
user=$(id -un)
if [ "$(id -u)" = 0 ]; then
	chown nobody "$dir"
	# The checkout may sit in a directory `nobody` cannot enter: run a copy.
	cp "$bin" "$dir/plinth" && chmod 755 "$dir/plinth" && bin="$dir/plinth"
	run="runuser -u nobody --"
	user=nobody
fi
$run env PLINTH_ADMIN_TOKEN="$token" "$bin" serve --listen 127.0.0.1:0 --data "$dir/data" \
	--ready-file "$dir/ready" >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
while [ ! -s "$dir/ready" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
url=$(cat "$dir/ready" 2>/dev/null)
check "daemon started as $user" test -n "$url"
daemon=$pid
# Under runuser the daemon is runuser's child; signal the daemon itself.
[ "$(id -u)" = 0 ] && daemon=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' | head -1)
owner=$(ps -o user= -p "$daemon" 2>/dev/null | tr -d ' ')
check "daemon process runs as $user" test "$owner" = "$user"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/v1/teams")
check "authenticated request answered 200" test "$code" = 200
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/teams")
check "request without a token answered 401" test "$code" = 401
mode=$(stat -c '%a' "$dir/data/plinth.db")
check "database file is owner-only (mode $mode)" test "$mode" = 600
check "the token secret is not in the logs" sh -c "! grep -q '$token' '$dir/err'"
kill -TERM "$daemon"
wait "$pid"
rc=$?
pid=""
check "SIGTERM stops it with status 0 (got $rc)" test "$rc" = 0
echo "# $n checks, $fails failed"
[ "$fails" = 0 ]
