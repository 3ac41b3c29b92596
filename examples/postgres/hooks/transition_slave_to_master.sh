#!/bin/sh
# transition_slave_to_master: this replica now leads; PostgreSQL leaves
# recovery and accepts writes.
set -eu
echo "ccctl-postgres: $CC_INSTANCE_ID promotes (fencing token $CC_FENCING_TOKEN)"
pg_ctl promote -D "$PGDATA" -w -t 60
