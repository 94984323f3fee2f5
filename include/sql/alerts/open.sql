-- Open an alert (kind, subject) raised by a run; one already open keeps the run that opened it.
INSERT INTO open_alerts (kind, subject, dag_id, run_id)
SELECT %(kind)s, subject, %(dag_id)s, %(run_id)s
FROM unnest(%(subjects)s::text[]) AS s (subject)
ON CONFLICT (kind, subject) DO NOTHING
