-- The subjects of the open alerts of one kind.
SELECT subject FROM open_alerts WHERE kind = %(kind)s ORDER BY subject
