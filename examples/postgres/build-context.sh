#!/bin/sh
# build-context.sh DIR fills two build contexts from this machine's Debian
# packages, for the images compose.yaml runs (no registry is needed):
#
#   DIR/postgres  for Dockerfile: the PostgreSQL server (postgresql-15) with
#                 every shared library it loads (as ldd lists them), time
#                 zone data, a static busybox for the hooks' shell
#                 (busybox-static), users, and this example's hooks,
#                 service.sh and ccctl.yaml;
#   DIR/etcd      for etcd.Dockerfile: etcd and etcdctl (etcd-server,
#                 etcd-client) with the shared libraries they load.
#
#   examples/postgres/build-context.sh /tmp/pg-context
#   docker build -t ccctl-postgres -f examples/postgres/Dockerfile /tmp/pg-context/postgres
#   docker build -t ccctl-postgres-etcd -f examples/postgres/etcd.Dockerfile /tmp/pg-context/etcd
#
# BUSYBOX names a static busybox (default: the one Debian's busybox-static
# installs, /bin/busybox); ETCD the etcd server (default: etcd on PATH);
# PG_VERSION the PostgreSQL major version (15).
set -eu

ctx=${1:?usage: build-context.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
pgver=${PG_VERSION:-15}
busybox=${BUSYBOX:-/bin/busybox}
etcd=${ETCD:-$(command -v etcd || true)}
etcdctl=$(command -v etcdctl || true)

[ -x "/usr/lib/postgresql/$pgver/bin/postgres" ] || {
	echo "build-context.sh: no PostgreSQL $pgver server here (apt-get install postgresql-$pgver)" >&2
	exit 1
}
[ -x "$busybox" ] || {
	echo "build-context.sh: no static busybox at $busybox (apt-get install busybox-static, or set BUSYBOX)" >&2
	exit 1
}
[ -n "$etcd" ] && [ -x "$etcd" ] || {
	echo "build-context.sh: no etcd server here (apt-get install etcd-server, or set ETCD)" >&2
	exit 1
}
[ -n "$etcdctl" ] || {
	echo "build-context.sh: no etcdctl here (apt-get install etcd-client)" >&2
	exit 1
}

# libs ROOT FILE... copies every shared library the files load, the loader
# included, under ROOT.
libs() {
	root=$1
	shift
	for f in "$@"; do
		ldd "$f" 2>/dev/null || true
	done | grep -o '/[^ ]*' | sort -u | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# PostgreSQL.
pg=$ctx/postgres
root=$pg/rootfs
rm -rf "$root"
mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql" "$root/usr/share" "$root/etc" "$root/bin"
cp -a "/usr/lib/postgresql/$pgver" "$root/usr/lib/postgresql/"
cp -a "/usr/share/postgresql/$pgver" "$root/usr/share/postgresql/"
cp -a /usr/share/zoneinfo "$root/usr/share/"
cp "$busybox" "$root/bin/busybox"
libs "$root" "$root/usr/lib/postgresql/$pgver/bin/"* "$root/usr/lib/postgresql/$pgver/lib/"*.so

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
GROUP

cp "$here/ccctl.yaml" "$pg/ccctl.yaml"
cp "$here/service.sh" "$pg/service.sh"
rm -rf "$pg/hooks"
cp -R "$here/hooks" "$pg/hooks"
chmod 755 "$pg/service.sh" "$pg/hooks/"*.sh

# etcd.
et=$ctx/etcd
rm -rf "$et/rootfs"
mkdir -p "$et/rootfs/usr/bin" "$et/rootfs/data"
cp -L "$etcd" "$et/rootfs/usr/bin/etcd"
cp -L "$etcdctl" "$et/rootfs/usr/bin/etcdctl"
libs "$et/rootfs" "$etcd" "$etcdctl"
