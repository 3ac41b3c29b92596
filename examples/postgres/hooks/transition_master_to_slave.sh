#!/bin/sh
# transition_master_to_slave: this primary hands over (ccctl switchover). A
# former primary cannot follow the new one in place (its service is this
# very server, and its data may need a rewind), so it stops, and the
# container ends with a non-zero code for the restart policy to start it
# again as a replica (started_as_slave.sh clones the new primary):
#
# - the fast shutdown sends every WAL record to the connected replicas and
#   waits for them to confirm it, so the next primary has every commit (an
#   immediate shutdown follows when it does not complete in 50 s: the
#   hook's timeout in ccctl.yaml is 120 s);
# - service.sh turns the server's exit code 0 into 75, since it finds the
#   marker written here, and ccctl exits with it.
#
# A lost leadership (etcd unreachable, lease expired) does not come here:
# ccctl.yaml sets leadership_lost_action to exit, so ccctl itself stops the
# server within its fence's deadline and exits 5.
set -eu
echo "ccctl-postgres: $CC_INSTANCE_ID steps down; it will come back as a replica"
: >/run/postgresql/ccctl-demoted
if ! pg_ctl stop -D "$PGDATA" -m fast -w -t 50; then
	# ccctl hands over when this hook returns: the server must be down by
	# then, whatever it had left to send.
	echo "ccctl-postgres: the fast shutdown did not complete; immediate shutdown" >&2
	pg_ctl stop -D "$PGDATA" -m immediate -w -t 30
fi
