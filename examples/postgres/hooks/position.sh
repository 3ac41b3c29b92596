#!/bin/sh
# position.sh prints this member's WAL position as one non-negative
# integer, the bytes of WAL from 0/0, for ccctl's failover ranking
# (CCCTL_POSITION_COMMAND in compose.yaml). While the server runs:
#
# - on a primary, what it has written (pg_current_wal_lsn);
# - on a replica, what it has received from its primary
#   (pg_last_wal_receive_lsn), or replayed when that is further on: the
#   receiver never ran (NULL), or it just started again, from the start of
#   a WAL segment, below what was already replayed.
#
# A replica whose WAL receiver stopped keeps the position of the last
# record it received, so its lag shows.
#
# While no server runs (ccctl waits for the election before it starts
# one), and the data folder was shut down cleanly (pg_controldata: "shut
# down", "shut down in recovery"), the end of the WAL in it: so that after
# the whole cluster was stopped, the members can still rank one another.
# A data folder left by a crash, or none, has no position.
#
# With no position (the server does not answer, is still starting, or the
# data folder is not clean), it prints nothing on stdout and exits
# non-zero: ccctl then publishes none (unknown).
set -eu
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-3}"

# wal_end prints the end of the last WAL record in $PGDATA/pg_wal, read
# from the latest checkpoint's redo location on its timeline, or the
# checkpoint's own location when no record can be read.
wal_end() {
	control=$(pg_controldata -D "$PGDATA")
	field() { printf '%s\n' "$control" | sed -n "s/^$1: *//p"; }
	state=$(field 'Database cluster state')
	case $state in
	'shut down' | 'shut down in recovery') ;;
	*)
		echo "position.sh: no position: the server is down and its data folder is not shut down cleanly ($state)" >&2
		return 1
		;;
	esac
	redo=$(field "Latest checkpoint's REDO location")
	tli=$(field "Latest checkpoint's TimeLineID")
	# The last record pg_waldump reads: "... len (rec/tot):  54/  54, ...
	# lsn: 0/04042628, ...", whose end is its lsn plus its total length.
	# pg_waldump fails where the WAL ends; only its last record counts.
	last=$(pg_waldump -p "$PGDATA/pg_wal" -t "$tli" -s "$redo" 2>/dev/null | tail -n 1 |
		sed -n 's|.*len (rec/tot): *[0-9]*/ *\([0-9]*\),.* lsn: \([0-9A-F]*\)/\([0-9A-F]*\),.*|\1 \2 \3|p')
	if [ -n "$last" ]; then
		# shellcheck disable=SC2086 # three words: length, high, low
		set -- $last
		# Records start on 8-byte boundaries: the next one, where a
		# server's position would be.
		echo $(((0x$2 * 4294967296 + 0x$3 + $1 + 7) / 8 * 8))
		return
	fi
	at=$(field 'Latest checkpoint location')
	echo $((0x${at%/*} * 4294967296 + 0x${at#*/}))
}

if pg_ctl status -D "$PGDATA" >/dev/null 2>&1; then
	pos=$(psql -h /run/postgresql -U postgres -d postgres -X -qAt -v ON_ERROR_STOP=1 -c "
SELECT pg_wal_lsn_diff(
  CASE WHEN pg_is_in_recovery()
    THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
    ELSE pg_current_wal_lsn()
  END, '0/0')::bigint")
elif [ -s "$PGDATA/global/pg_control" ]; then
	pos=$(wal_end)
else
	echo "position.sh: no position: no server runs and there is no data folder in $PGDATA" >&2
	exit 1
fi
case $pos in
'' | *[!0-9]*)
	echo "position.sh: no WAL position (got \"$pos\"): is the server still starting?" >&2
	exit 1
	;;
esac
echo "$pos"
