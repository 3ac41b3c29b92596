#!/bin/sh
# started_as_slave: runs before PostgreSQL starts on a member that follows.
# The data is cloned afresh from the master (CC_MASTER_ADDRESS), retrying
# while the master's server is still starting.
set -eu
echo "ccctl-postgres: $CC_INSTANCE_ID clones from $CC_MASTER_ID at $CC_MASTER_ADDRESS"
for attempt in $(seq 1 60); do
	rm -rf "$PGDATA"
	if pg_basebackup -h "$CC_MASTER_ADDRESS" -U postgres -D "$PGDATA" -R -X stream -c fast \
		-d "application_name=$CC_INSTANCE_ID"; then
		exit 0
	fi
	sleep 1
done
echo "ccctl-postgres: cannot clone from $CC_MASTER_ADDRESS" >&2
exit 1
