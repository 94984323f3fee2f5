-- The condition that makes notification n due, one that a send task may claim now: scheduled with its instant
-- at or before scheduled_due_by (the caller's clock less a grace, which the sweep leaves the hourly releases);
-- sending with no live claim (shared/lease_live.sql, on the database clock) and its instant come (a send task
-- claims its batch a little before the instant: if it dies then, nobody takes the rows before it); or failed
-- and retryable, its retry_after passed and its attempts below max_attempts. None older than the late window
-- (max_lateness before now). Used as the placeholder of the same name by deliver/claim.sql, sweep/due_batches.sql and
-- sweep/cancel_orphans.sql; the statement binds now, scheduled_due_by, max_lateness and max_attempts.
(
    n.send_at > %(now)s - %(max_lateness)s::interval
    AND (
        (n.status = 'scheduled' AND n.send_at <= %(scheduled_due_by)s)
        OR (n.status = 'sending' AND n.send_at <= %(now)s AND NOT {shared/lease_live})
        OR (n.status = 'failed' AND n.retry_after <= %(now)s AND n.attempts < %(max_attempts)s)
    )
)
