-- Which Airflow task instance made each HTTP attempt, so the Birthdays page can link an attempt to its task
-- log. NULL for attempts made outside a task (tools, tests).
ALTER TABLE notification_attempts
    ADD COLUMN IF NOT EXISTS dag_id text,
    ADD COLUMN IF NOT EXISTS run_id text,
    ADD COLUMN IF NOT EXISTS task_id text,
    ADD COLUMN IF NOT EXISTS map_index integer,
    ADD COLUMN IF NOT EXISTS try_number integer;
