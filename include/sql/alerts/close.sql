-- Close the open alerts of one kind whose subjects are given, returning what each was: the recoveries to report.
DELETE FROM open_alerts
WHERE kind = %(kind)s AND subject = ANY (%(subjects)s::text[])
RETURNING subject, dag_id, run_id, opened_at
