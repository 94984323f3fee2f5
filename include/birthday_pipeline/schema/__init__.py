"""The database schema: the migrations, their runner (``python -m birthday_pipeline.schema.migrations``) and the check
every DAG runs first."""
