#!/bin/sh
# master_changed: another member leads now; this replica streams from it
# (primary_conninfo is reloadable since PostgreSQL 13).
set -eu
echo "ccctl-postgres: $CC_INSTANCE_ID follows $CC_MASTER_ID at $CC_MASTER_ADDRESS"
psql -h /run/postgresql -v ON_ERROR_STOP=1 -qAt \
	-c "ALTER SYSTEM SET primary_conninfo = 'host=$CC_MASTER_ADDRESS user=postgres application_name=$CC_INSTANCE_ID'" \
	-c "SELECT pg_reload_conf()" >/dev/null
