#!/bin/sh
# transition_master_to_slave: this member lost the leadership. A former
# primary cannot follow the new one without a rewind, so it stops; ccctl
# then exits, the restart policy starts the container again, and it comes
# back through started_as_slave with a fresh clone.
set -eu
echo "ccctl-postgres: $CC_INSTANCE_ID steps down"
pg_ctl stop -D "$PGDATA" -m fast -w -t 60
