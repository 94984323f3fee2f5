-- How many send tasks of one run each Celery worker ran (Airflow metadata database).
SELECT hostname, count(*) AS batches
FROM task_instance
WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND task_id = %(task_id)s AND hostname <> ''
GROUP BY hostname
ORDER BY hostname
