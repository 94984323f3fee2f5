-- How many notifications wait for a webhook endpoint now: every row a send task could claim if it were
-- allowed to send (shared/due.sql, with no grace). Notifications do not name their endpoint: every row goes to
-- the one webhook connection the DAGs send with.
SELECT count(*) AS waiting
FROM notifications AS n
WHERE n.occasion = ANY (%(occasions)s::text[])
    AND {shared/due}
