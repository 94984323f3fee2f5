-- The task instances one DAG run created, mapped ones counted one by one (Airflow metadata database).
SELECT count(*) FROM task_instance WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s
