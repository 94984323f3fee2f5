-- The run the benchmark triggered (Airflow metadata database).
SELECT run_id FROM dag_run WHERE dag_id = %(dag_id)s AND run_type = 'manual'
