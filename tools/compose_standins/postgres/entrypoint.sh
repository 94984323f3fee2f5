#!/usr/bin/env bash
# As the official postgres image's docker-entrypoint.sh, reduced to what docker-compose.yaml uses: as root,
# hand the data directory to `postgres` and re-run as that user; on an empty data directory run initdb with
# POSTGRES_USER as superuser (password POSTGRES_PASSWORD, scram-sha-256 over TCP) and create POSTGRES_DB.
set -euo pipefail
if [[ $(id -u) == 0 ]]; then
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    initdb --username="${POSTGRES_USER:-postgres}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [[ -n ${POSTGRES_DB:-} && ${POSTGRES_DB} != "postgres" ]]; then
        postgres --single -D "$PGDATA" postgres <<< "CREATE DATABASE \"${POSTGRES_DB}\";" >/dev/null
    fi
fi
exec "$@" -c listen_addresses='*'
