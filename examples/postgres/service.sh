#!/bin/sh
# service.sh: the service ccctl supervises, PostgreSQL with one exit code
# more. A primary stopped by transition_master_to_slave.sh (a switchover)
# exits 75 instead of 0, so ccctl exits 75 and a restart policy of
# on-failure starts the container again: it comes back as a replica through
# started_as_slave.sh. Otherwise it exits with PostgreSQL's own code.
#
# ccctl sends SIGTERM to the whole process group when it stops, so
# PostgreSQL gets it directly; the signals ccctl forwards to its service's
# main process (SIGHUP reloads the configuration) are passed on here.
set -u
marker=/run/postgresql/ccctl-demoted
rm -f "$marker"
postgres "$@" &
pid=$!
for sig in HUP INT QUIT USR1 USR2 TERM; do
	# shellcheck disable=SC2064 # $pid is known now
	trap "kill -$sig $pid 2>/dev/null" "$sig"
done
while :; do
	wait "$pid"
	rc=$?
	# wait returns above 128 when a trapped signal interrupted it.
	if [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then
		continue
	fi
	break
done
if [ "$rc" -eq 0 ] && [ -e "$marker" ]; then
	echo "ccctl-postgres: stopped as a former primary: exit 75, to be started again as a replica"
	exit 75
fi
exit "$rc"
