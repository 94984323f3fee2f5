-- Runs once, when the postgres service initialises an EMPTY data volume
-- (files in /docker-entrypoint-initdb.d are skipped if the volume already holds a cluster;
-- `docker compose down -v` resets it). Creates the pipeline's own database next to Airflow's
-- metadata database `airflow`; the AIRFLOW_CONN_BIRTHDAY_DB connection points here.
CREATE DATABASE birthday OWNER airflow;
