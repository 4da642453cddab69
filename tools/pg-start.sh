#!/bin/sh
# tools/pg-start.sh - starts a throwaway PostgreSQL for one test or bench run
# and prints shell assignments to eval:
#   PLINTH_TEST_PG_URL=postgresql://ROLE:PASSWORD@127.0.0.1:PORT/DB
#   PLINTH_TEST_PG_CTL='command prefix; append stop, start or restart'
#   PLINTH_TEST_PG_STOP='command that stops and deletes it'
# As root it uses the machine's PostgreSQL packages (installed with apt-get
# through tools/deps.sh when missing) and a dedicated cluster made with
# pg_createcluster and started with pg_ctlcluster, so a test that restarts
# "its" PostgreSQL never disturbs the machine's main cluster or another
# run.  As another user it runs initdb + pg_ctl in a temporary directory.
# It must never touch an existing cluster or database.
set -eu
cd "$(dirname "$0")/.."
./tools/deps.sh postgresql postgresql-contrib >&2
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
bin=/usr/lib/postgresql/$ver/bin
[ -x "$bin/postgres" ] || { echo "pg-start: no PostgreSQL server in $bin" >&2; exit 1; }
tag="plinth_$(date +%s)_$$"
pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# A free TCP port from 24000 up, and not the port of any configured cluster:
# a cluster stopped for a moment (the restart test) keeps its port.  Below the
# kernel's ephemeral range (32768-60999 by default) on purpose: while the
# server is down, a daemon reconnecting to a port in that range can be given
# that very port as its own source port and connect to itself, and then the
# server cannot listen there again (seen here with 54000).
taken=$(pg_lsclusters -h 2>/dev/null | awk '{print $3}')
port=24000
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || ls /var/run/postgresql/.s.PGSQL.$port >/dev/null 2>&1 \
	|| ls /tmp/.s.PGSQL.$port >/dev/null 2>&1 || echo "$taken" | grep -qx "$port"; do
	port=$((port + 1))
done
if [ "$(id -u)" = 0 ]; then
	pg_createcluster "$ver" "$tag" -p "$port" -o max_connections=300 >/dev/null
	trap 'pg_dropcluster --stop "$ver" "$tag" >/dev/null 2>&1' EXIT
	pg_ctlcluster "$ver" "$tag" start
	psql_cmd() { runuser -u postgres -- "$bin/psql" -p "$port" -h /var/run/postgresql -qAtX -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
	ctl="pg_ctlcluster $ver $tag"
	stop="pg_dropcluster --stop $ver $tag"
else
	dir=$(mktemp -d "${TMPDIR:-/tmp}/plinth-pg-XXXXXX")
	"$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
	printf "port = %s\nunix_socket_directories = '%s'\nlisten_addresses = '127.0.0.1'\nmax_connections = 300\n" \
		"$port" "$dir" >>"$dir/data/postgresql.conf"
	"$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
	psql_cmd() { "$bin/psql" -p "$port" -h "$dir" -U postgres -qAtX -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
	ctl="$bin/pg_ctl -D $dir/data -l $dir/log -w"
	stop="$bin/pg_ctl -D $dir/data -w -m immediate stop; rm -rf $dir"
fi
psql_cmd "CREATE ROLE $tag LOGIN CREATEDB PASSWORD '$pw'" >/dev/null
psql_cmd "CREATE DATABASE $tag OWNER $tag" >/dev/null
echo "PLINTH_TEST_PG_URL='postgresql://$tag:$pw@127.0.0.1:$port/$tag'"
echo "PLINTH_TEST_PG_CTL='$ctl'"
echo "PLINTH_TEST_PG_STOP='$stop'"
echo "PLINTH_TEST_PGBENCH='$bin/pgbench'"
trap - EXIT
