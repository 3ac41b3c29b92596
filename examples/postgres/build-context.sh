#!/bin/sh
# build-context.sh DIR fills DIR with the build context of this example's
# Dockerfile, taken from the PostgreSQL server installed on this machine
# (Debian's postgresql-15 package): the server's files, every shared library
# they load (as ldd lists them), time zone data, a static busybox for the
# hooks' shell, users, and this example's hooks and ccctl.yaml.
#
#   examples/postgres/build-context.sh /tmp/pg-context
#   docker build -t ccctl-postgres -f examples/postgres/Dockerfile /tmp/pg-context
#
# BUSYBOX names a static busybox (default: the one Debian's busybox-static
# installs, /bin/busybox); PG_VERSION the PostgreSQL major version (15).
set -eu

ctx=${1:?usage: build-context.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
pgver=${PG_VERSION:-15}
busybox=${BUSYBOX:-/bin/busybox}
root=$ctx/rootfs

[ -x "/usr/lib/postgresql/$pgver/bin/postgres" ] || {
	echo "build-context.sh: no PostgreSQL $pgver server here (apt-get install postgresql-$pgver)" >&2
	exit 1
}
[ -x "$busybox" ] || {
	echo "build-context.sh: no static busybox at $busybox (apt-get install busybox-static, or set BUSYBOX)" >&2
	exit 1
}

rm -rf "$root"
mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql" "$root/usr/share" "$root/etc" "$root/bin"
cp -a "/usr/lib/postgresql/$pgver" "$root/usr/lib/postgresql/"
cp -a "/usr/share/postgresql/$pgver" "$root/usr/share/postgresql/"
cp -a /usr/share/zoneinfo "$root/usr/share/"
cp "$busybox" "$root/bin/busybox"

# Every shared library of every program and module, the loader included.
for f in "$root/usr/lib/postgresql/$pgver/bin/"* "$root/usr/lib/postgresql/$pgver/lib/"*.so; do
	ldd "$f" 2>/dev/null || true
done | grep -o '/[^ ]*' | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
GROUP

cp "$here/ccctl.yaml" "$ctx/ccctl.yaml"
rm -rf "$ctx/hooks"
cp -R "$here/hooks" "$ctx/hooks"
chmod 755 "$ctx/hooks/"*.sh
