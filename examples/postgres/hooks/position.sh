#!/bin/sh
# position.sh prints this member's WAL position as one non-negative
# integer, the bytes from 0/0 (for ccctl's failover ranking,
# position_command): what a replica has received (or, before it streams,
# replayed), what a primary has written. It fails, printing nothing on
# stdout, when the server does not answer.
set -eu
psql -h /run/postgresql -U postgres -d postgres -X -qAt -v ON_ERROR_STOP=1 -c "
SELECT pg_wal_lsn_diff(
  CASE WHEN pg_is_in_recovery()
    THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), '0/0')
    ELSE pg_current_wal_lsn()
  END, '0/0')::numeric(20,0)"
