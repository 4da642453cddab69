#!/bin/sh
# Installs missing Debian packages when run as root, otherwise prints the
# exact command to run.  Usage: deps.sh PACKAGE...
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
	# A tool may come from another package (npm inside NodeSource's nodejs).
	case "$p" in *-dev|lib*) ;; *) command -v "$p" >/dev/null 2>&1 && continue ;; esac
	missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "deps: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq $missing >/dev/null || exit 1
else
	echo "deps: missing Debian packages. Run:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
