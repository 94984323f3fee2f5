-- Which task instance (run, task, map index, try) delivered the messages of one send instant, and how many each
-- (tools/compose_test.py joins these with the task instances' hosts from Airflow's API).
SELECT a.run_id, a.task_id, a.map_index, a.try_number, count(*) AS messages
FROM notification_attempts AS a
JOIN notifications AS n ON n.id = a.notification_id
WHERE n.send_at = %(send_at)s
  AND a.dag_id = %(dag_id)s
  AND n.status = 'sent'
  AND a.http_status BETWEEN 200 AND 299
GROUP BY a.run_id, a.task_id, a.map_index, a.try_number
ORDER BY a.run_id, a.task_id, a.map_index, a.try_number
