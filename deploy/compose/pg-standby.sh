#!/bin/sh
# The standby: on first start, clone the primary and follow it; afterwards just run.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream; do
    echo "waiting for the primary..."; sleep 2
  done
  # application_name must match the primary's synchronous_standby_names.
  echo "primary_conninfo = 'host=$PRIMARY_HOST user=replicator password=$REPLICATION_PASSWORD application_name=standby1'" \
    >> "$PGDATA/postgresql.auto.conf"
  chmod 700 "$PGDATA"
fi
exec postgres
