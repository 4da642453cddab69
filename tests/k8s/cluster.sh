#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver
# and kube-controller-manager (no kubelet, no scheduler: tests bind pods and
# set their status themselves, through pods/binding and pods/status).
#
#   tests/k8s/cluster.sh start DIR   start everything; state, logs and PKI in DIR
#   tests/k8s/cluster.sh stop DIR    stop everything started in DIR, remove DIR
#   tests/k8s/cluster.sh stop-apiserver DIR   stop only the API server
#   tests/k8s/cluster.sh start-apiserver DIR  start it again (same port, flags)
#
# PLINTH_K8S_ADMISSION_CONFIG=FILE (optional, at start): the API server's
# --admission-control-config-file, e.g. an AdmissionConfiguration giving the
# ValidatingAdmissionWebhook plugin a kubeconfig with a webhook's token
# (docs/kubernetes.md, "Installing it").
#
# `start` writes DIR/env (shell assignments to source):
#   KUBE_URL       https://127.0.0.1:PORT (the API server)
#   KUBE_TOKEN     bearer token of an admin (group system:masters)
#   KUBE_CA        CA certificate that signed the API server's certificate
#   KUBECONFIG     DIR/kubeconfig with that admin token
#   KUBE_CONTROLLER_TOKEN  bearer token of user "plinth-controller" (no rights
#                  until a test binds it a role)
#   KUBE_PKI       DIR/pki: ca.crt/ca.key sign more certificates (webhooks)
#   ETCD_URL       the etcd client URL
# Binaries: $PLINTH_K8S_BIN and $PLINTH_ETCD_BIN if set, else those that
# tools/k8s-build.sh builds or finds in its cache. Each daemon runs in its own
# process group (setsid); their ids are in DIR/pids.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
MARK=.plinth-k8s-cluster
# Everything is on loopback: never through a proxy (the API server calls
# webhooks with the proxy settings of its environment).
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

# running PID: PID exists and is not a zombie (a daemon's parent, cluster.sh,
# is gone: it is reaped by whoever adopted it, maybe late).
running() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# stop_dir DIR: TERM each process group in DIR/pids (newest first), KILL
# what is left after 20 s, then remove DIR.
stop_dir() {
	local dir=$1 pid i
	[ -d "$dir" ] || return 0
	[ -f "$dir/$MARK" ] || die "$dir was not made by cluster.sh start; not touching it"
	if [ -f "$dir/pids" ]; then
		local pids
		pids=$(tac "$dir/pids" | awk '{print $2}')
		for pid in $pids; do
			kill -TERM -- "-$pid" 2>/dev/null || true
		done
		for i in $(seq 1 40); do
			local alive=0
			for pid in $pids; do
				running "$pid" && alive=1
			done
			[ "$alive" -eq 1 ] || break
			sleep 0.5
		done
		for pid in $pids; do
			kill -KILL -- "-$pid" 2>/dev/null || true
		done
		# SIGKILL is delivered asynchronously: gone means gone before we return.
		for i in $(seq 1 50); do
			local alive=0
			for pid in $pids; do
				running "$pid" && alive=1
			done
			[ "$alive" -eq 1 ] || break
			sleep 0.1
		done
	fi
	rm -rf "$dir"
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, one a line.
free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# spawn NAME CMD...: CMD in its own process group, output in DIR/NAME.log.
spawn() {
	local name=$1
	shift
	setsid "$@" >"$dir/$name.log" 2>&1 </dev/null &
	echo "$name $!" >>"$dir/pids"
}

# wait_https NAME URL TOKEN TRIES: until URL answers 200 (0.5 s apart), or fail
# with the tail of NAME's log.
wait_https() {
	local name=$1 url=$2 token=$3 tries=$4 i pid
	pid=$(awk -v n="$name" '$1 == n {print $2}' "$dir/pids")
	for i in $(seq 1 "$tries"); do
		if curl -sf --max-time 5 --cacert "$dir/pki/ca.crt" ${token:+-H "Authorization: Bearer $token"} \
			"$url" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	echo "cluster.sh: $name is not ready at $url; the end of $dir/$name.log:" >&2
	tail -n 30 "$dir/$name.log" >&2
	return 1
}

pki() {
	local p=$dir/pki
	mkdir -p "$p"
	(
		cd "$p"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 \
			-subj "/CN=plinth-test-ca" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
			-subj "/CN=kube-apiserver"
		printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc" \
			>apiserver.ext
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out apiserver.crt -days 7 -extfile apiserver.ext
		# Service-account tokens: the API server signs with sa.key and checks
		# with sa.pub; the controller manager signs with sa.key too.
		openssl genrsa -out sa.key 2048
		openssl rsa -in sa.key -pubout -out sa.pub
		chmod 600 ./*.key
	) >"$dir/pki.log" 2>&1 || { cat "$dir/pki.log" >&2; die "openssl failed"; }
}

# kubeconfig FILE TOKEN: a kubeconfig for the API server with a bearer token.
kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: plinth-test
  cluster:
    server: $url
    certificate-authority: $dir/pki/ca.crt
users:
- name: user
  user:
    token: $2
contexts:
- name: plinth-test
  context: {cluster: plinth-test, user: user}
current-context: plinth-test
EOF
	chmod 600 "$1"
}

# apiserver_spawn ETCD_URL PORT ADMISSION_CONFIG: start kube-apiserver.
# ValidatingAdmissionWebhook is on by default; named here because the suite
# depends on it. The endpoint reconciler (the "kubernetes" Service's
# endpoints) refuses a loopback address: none. ADMISSION_CONFIG, when not
# empty, is an AdmissionConfiguration file (--admission-control-config-file),
# e.g. the credentials the API server sends to a webhook.
apiserver_spawn() {
	local etcd_url=$1 api_port=$2 admission=$3
	spawn kube-apiserver "$PLINTH_K8S_BIN/kube-apiserver" \
		--etcd-servers "$etcd_url" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
		--client-ca-file "$dir/pki/ca.crt" \
		--token-auth-file "$dir/pki/tokens.csv" \
		--authorization-mode Node,RBAC \
		--enable-admission-plugins NamespaceLifecycle,ServiceAccount,ValidatingAdmissionWebhook,MutatingAdmissionWebhook \
		${admission:+--admission-control-config-file "$admission"} \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$dir/pki/sa.pub" \
		--service-account-signing-key-file "$dir/pki/sa.key" \
		--service-cluster-ip-range 10.96.0.0/24 --endpoint-reconciler-type none \
		--allow-privileged=false --profiling=false \
		--v 1
}

# binaries: set PLINTH_K8S_BIN and PLINTH_ETCD_BIN (tools/k8s-build.sh).
binaries() {
	if [ -z "${PLINTH_K8S_BIN:-}" ] || [ -z "${PLINTH_ETCD_BIN:-}" ]; then
		local out
		out=$("$root/tools/k8s-build.sh") || die "tools/k8s-build.sh failed"
		eval "$out"
	fi
}

# stop_apiserver DIR: stop only the API server (TERM, KILL after 20 s); its
# line leaves DIR/pids. etcd and the controller manager keep running.
stop_apiserver() {
	dir=$1
	[ -f "$dir/$MARK" ] || die "$dir was not made by cluster.sh start"
	local pid i
	pid=$(awk '$1 == "kube-apiserver" {print $2}' "$dir/pids")
	[ -n "$pid" ] || die "no kube-apiserver in $dir/pids"
	kill -TERM -- "-$pid" 2>/dev/null || true
	for i in $(seq 1 40); do
		running "$pid" || break
		sleep 0.5
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	awk '$1 != "kube-apiserver"' "$dir/pids" >"$dir/pids.new" && mv "$dir/pids.new" "$dir/pids"
}

# start_apiserver DIR: start the API server stopped by stop-apiserver again,
# on the same port with the same flags; waits until it is ready.
start_apiserver() {
	dir=$1
	[ -f "$dir/$MARK" ] || die "$dir was not made by cluster.sh start"
	! grep -q '^kube-apiserver ' "$dir/pids" || die "kube-apiserver is running in $dir"
	local etcd_url api_port url admin admission_config
	# shellcheck disable=SC1091
	. "$dir/apiserver.state"
	binaries
	[ ! -f "$dir/kube-apiserver.log" ] || mv "$dir/kube-apiserver.log" "$dir/kube-apiserver.log.$(date +%s)"
	apiserver_spawn "$etcd_url" "$api_port" "$admission_config"
	wait_https kube-apiserver "$url/readyz" "$admin" 360 || die "kube-apiserver did not become ready"
}

start() {
	dir=$1
	if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
		die "$dir exists and is not empty"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	touch "$dir/$MARK"
	: >"$dir/pids"
	# Whatever fails below stops what was started and removes DIR.
	started=0
	trap '[ "$started" -eq 1 ] || stop_dir "$dir"' EXIT

	binaries
	local b
	for b in "$PLINTH_ETCD_BIN/etcd" "$PLINTH_K8S_BIN/kube-apiserver" "$PLINTH_K8S_BIN/kube-controller-manager"; do
		[ -x "$b" ] || die "missing binary $b"
	done

	local ports etcd_port peer_port api_port kcm_port
	ports=$(free_ports 4)
	{ read -r etcd_port; read -r peer_port; read -r api_port; read -r kcm_port; } <<<"$ports"
	local etcd_url=http://127.0.0.1:$etcd_port
	url=https://127.0.0.1:$api_port

	pki
	local admin controller kcm_token
	admin=$(openssl rand -hex 24)
	controller=$(openssl rand -hex 24)
	kcm_token=$(openssl rand -hex 24)
	# token,user,uid,"groups". The controller manager is a master: with
	# --use-service-account-credentials=false every controller acts as it.
	cat >"$dir/pki/tokens.csv" <<EOF
$admin,plinth-admin,uid-admin,"system:masters"
$controller,plinth-controller,uid-plinth-controller
$kcm_token,system:kube-controller-manager,uid-kcm,"system:masters"
EOF
	chmod 600 "$dir/pki/tokens.csv"

	# etcd: a single member, loopback only; no fsync (throwaway data).
	spawn etcd "$PLINTH_ETCD_BIN/etcd" --name plinth-test --data-dir "$dir/etcd" \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--listen-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
		--initial-cluster "plinth-test=http://127.0.0.1:$peer_port" \
		--unsafe-no-fsync --log-level warn
	local i etcd_ok=0
	for i in $(seq 1 120); do
		if curl -sf --max-time 5 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"'; then
			etcd_ok=1
			break
		fi
		sleep 0.5
	done
	[ "$etcd_ok" -eq 1 ] || { tail -n 30 "$dir/etcd.log" >&2; die "etcd did not start"; }

	# What start-apiserver needs to start the API server again.
	cat >"$dir/apiserver.state" <<EOF
etcd_url=$etcd_url
api_port=$api_port
url=$url
admin=$admin
admission_config=${PLINTH_K8S_ADMISSION_CONFIG:-}
EOF
	apiserver_spawn "$etcd_url" "$api_port" "${PLINTH_K8S_ADMISSION_CONFIG:-}"
	wait_https kube-apiserver "$url/readyz" "$admin" 360 || die "kube-apiserver did not become ready"

	kubeconfig "$dir/kubeconfig" "$admin"
	kubeconfig "$dir/pki/kcm.kubeconfig" "$kcm_token"
	# The controllers a Job needs: the Job controller creates the pods, the
	# service-account controller makes each namespace's "default" account
	# (the ServiceAccount admission plugin refuses pods without it), the
	# garbage collector deletes a deleted Job's pods, the namespace
	# controller empties deleted namespaces. It serves /healthz with the API
	# server's certificate (127.0.0.1, signed by our CA).
	spawn kube-controller-manager "$PLINTH_K8S_BIN/kube-controller-manager" \
		--kubeconfig "$dir/pki/kcm.kubeconfig" \
		--bind-address 127.0.0.1 --secure-port "$kcm_port" \
		--tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
		--controllers job-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,garbage-collector-controller,namespace-controller,ttl-after-finished-controller \
		--use-service-account-credentials=false \
		--service-account-private-key-file "$dir/pki/sa.key" \
		--root-ca-file "$dir/pki/ca.crt" \
		--leader-elect=false --profiling=false \
		--v 1
	wait_https kube-controller-manager "https://127.0.0.1:$kcm_port/healthz" "" 360 ||
		die "kube-controller-manager did not become healthy"

	cat >"$dir/env" <<EOF
KUBE_URL=$url
KUBE_TOKEN=$admin
KUBE_CA=$dir/pki/ca.crt
KUBECONFIG=$dir/kubeconfig
KUBE_CONTROLLER_TOKEN=$controller
KUBE_PKI=$dir/pki
ETCD_URL=$etcd_url
export KUBE_URL KUBE_TOKEN KUBE_CA KUBECONFIG KUBE_CONTROLLER_TOKEN KUBE_PKI ETCD_URL
EOF
	started=1
	echo "cluster.sh: API server at $url (env in $dir/env)" >&2
}

case "${1:-}" in
start)
	[ $# -eq 2 ] || die "usage: $0 start DIR"
	start "$2"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop DIR"
	stop_dir "$2"
	;;
stop-apiserver)
	[ $# -eq 2 ] || die "usage: $0 stop-apiserver DIR"
	stop_apiserver "$2"
	;;
start-apiserver)
	[ $# -eq 2 ] || die "usage: $0 start-apiserver DIR"
	start_apiserver "$2"
	;;
*)
	die "usage: $0 start|stop|stop-apiserver|start-apiserver DIR"
	;;
esac
