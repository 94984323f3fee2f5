#!/usr/bin/env bash
# The part of the official image's entrypoint (scripts/docker/entrypoint_prod.sh) that docker-compose.yaml
# relies on: wait for the metadata database (CONNECTION_CHECK_MAX_COUNT tries, 0 = do not wait), run
# `airflow db migrate` when _AIRFLOW_DB_MIGRATE=true, then run `bash`/`python` as given and anything else as
# an `airflow` subcommand.
set -euo pipefail

wait_for_airflow_db() {
    local tries=${CONNECTION_CHECK_MAX_COUNT:-20} sleep_seconds=${CONNECTION_CHECK_SLEEP_TIME:-3}
    (( tries > 0 )) || return 0
    for (( try = 1; try <= tries; try++ )); do
        if airflow db check >/dev/null 2>&1; then return 0; fi
        echo "Waiting for the metadata database: try ${try} of ${tries}" >&2
        sleep "${sleep_seconds}"
    done
    echo "The metadata database could not be reached" >&2
    return 1
}

command_name=${1:-}
if [[ ${command_name} == "bash" ]]; then shift; exec /bin/bash "$@"; fi
if [[ ${command_name} == "python" ]]; then shift; exec python "$@"; fi
if [[ ${command_name} == "airflow" ]]; then shift; fi
wait_for_airflow_db
if [[ ${_AIRFLOW_DB_MIGRATE:-false} == "true" ]]; then airflow db migrate; fi
exec airflow "$@"
