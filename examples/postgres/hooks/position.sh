#!/bin/sh
# position.sh prints this member's WAL position as one non-negative
# integer, the bytes of WAL from 0/0, for ccctl's failover ranking
# (CCCTL_POSITION_COMMAND in compose.yaml):
#
# - on a primary, what it has written (pg_current_wal_lsn);
# - on a replica, what it has received from its primary
#   (pg_last_wal_receive_lsn), or replayed when that is further on: the
#   receiver never ran (NULL), or it just started again, from the start of
#   a WAL segment, below what was already replayed.
#
# A replica whose WAL receiver stopped keeps the position of the last
# record it received, so its lag shows. When the server does not answer,
# or knows no position, it prints nothing on stdout and exits non-zero:
# ccctl then publishes no position (unknown).
set -eu
pos=$(PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-3} psql -h /run/postgresql -U postgres -d postgres -X -qAt -v ON_ERROR_STOP=1 -c "
SELECT pg_wal_lsn_diff(
  CASE WHEN pg_is_in_recovery()
    THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
    ELSE pg_current_wal_lsn()
  END, '0/0')::bigint")
case $pos in
'' | *[!0-9]*)
	echo "position.sh: no WAL position (got \"$pos\"): is the server still starting?" >&2
	exit 1
	;;
esac
echo "$pos"
