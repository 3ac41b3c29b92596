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

# wal_end prints the end of the WAL in $PGDATA/pg_wal, where a server
# would write its next record: the end of the last record pg_waldump reads
# from the latest checkpoint's redo location on its timeline (pg_waldump
# fails where the WAL ends), or the checkpoint's own location when it reads
# none.
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
	blk=$(field 'WAL block size')
	seg=$(field 'Bytes per WAL segment')
	redo=$(field "Latest checkpoint's REDO location")
	tli=$(field "Latest checkpoint's TimeLineID")
	# "rmgr: XLOG  len (rec/tot):  24/  24, tx: 0, lsn: 0/06000100, prev
	# 0/060000D8, desc: SWITCH": the total length, the lsn, the kind.
	last=$(pg_waldump -p "$PGDATA/pg_wal" -t "$tli" -s "$redo" 2>/dev/null | tail -n 1 |
		sed -n 's|.*len (rec/tot): *[0-9]*/ *\([0-9]*\),.* lsn: \([0-9A-F]*\)/\([0-9A-F]*\),.* desc: \([A-Z_]*\).*|\1 \2 \3 \4|p')
	if [ -z "$last" ]; then
		at=$(field 'Latest checkpoint location')
		echo $((0x${at%/*} * 4294967296 + 0x${at#*/}))
		return
	fi
	# shellcheck disable=SC2086 # four words
	set -- $last
	left=$1
	pos=$((0x$2 * 4294967296 + 0x$3))
	if [ "$4" = SWITCH ]; then
		# The rest of the segment is skipped.
		echo $(((pos / seg + 1) * seg))
		return
	fi
	# A record runs on over the next pages, past each page's header (40
	# bytes on a segment's first page, 24 on the others); the next one
	# starts on an 8-byte boundary.
	while [ $((blk - pos % blk)) -lt "$left" ]; do
		left=$((left - (blk - pos % blk)))
		pos=$(((pos / blk + 1) * blk))
		if [ $((pos % seg)) -eq 0 ]; then
			pos=$((pos + 40))
		else
			pos=$((pos + 24))
		fi
	done
	echo $(((pos + left + 7) / 8 * 8))
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
