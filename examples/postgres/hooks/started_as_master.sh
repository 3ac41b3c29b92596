#!/bin/sh
# started_as_master: runs before PostgreSQL starts on the member that leads.
# A new data folder is initialised; the data of a former replica is opened
# read-write (its standby.signal removed).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	echo "ccctl-postgres: $CC_INSTANCE_ID initialises $PGDATA (fencing token $CC_FENCING_TOKEN)"
	initdb -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >/dev/null
	cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/run/postgresql'
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
CONF
	# Trust inside the private network of the example; use scram-sha-256
	# and a password file (ETCD_PASSWORD_FILE-style secrets) for real.
	cat >>"$PGDATA/pg_hba.conf" <<HBA
host all all all trust
host replication all all trust
HBA
elif [ -f "$PGDATA/standby.signal" ]; then
	echo "ccctl-postgres: $CC_INSTANCE_ID opens its replica's data read-write"
	rm -f "$PGDATA/standby.signal"
fi
