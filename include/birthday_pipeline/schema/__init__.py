"""The database schema: the migrations and what works on them, one job a module.

    files    the migration files this code ships: order, checksums, directives (no-transaction index=..., bundled-users)
    runner   apply them: the advisory lock, transactional and no-transaction files, INVALID index rebuilds
    status   what a database has applied, what is pending or changed; ``describe`` for a person
    check    ``schema_problems``: the version and the users relation, for the first task of every DAG
    cli      ``python -m birthday_pipeline.schema {status,apply}`` (the console script ``birthday-pipeline-migrate``)

Only ``runner.migrate_connection`` and ``cli`` reach Airflow (through ``PostgresHook``); files, status and check
take a DB-API connection.
"""
