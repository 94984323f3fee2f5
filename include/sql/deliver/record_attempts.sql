-- Record HTTP attempts of one claim (a flush of the recorder: a few hundred at most) and move each row the
-- claim still holds to sent or failed. A failed row may be tried again from its retry_after on; NULL means
-- the failure was permanent. Each attempt names the Airflow task instance that made it (NULLs outside a task).
-- Joined by primary key, with the claim token a column of the attempts rather than a constant: right after a
-- claim, the planner's statistics still say claim_token is NULL everywhere, and a constant there would let it
-- drive a nested loop from that (wrong) estimate over the whole table (docs/performance.md).
-- Idempotent, so a flush done again after a lost connection changes nothing: an attempt already recorded
-- under this claim is not inserted twice, and a row no longer holding the token is left alone.
WITH attempt AS MATERIALIZED (
    SELECT a.*, %(claim_token)s::uuid AS claim_token
    FROM unnest(
        %(ids)s::bigint[], %(attempt_numbers)s::integer[], %(started_ats)s::timestamptz[],
        %(finished_ats)s::timestamptz[], %(http_statuses)s::integer[], %(errors)s::text[],
        %(latencies_ms)s::double precision[], %(retry_afters)s::timestamptz[]
    ) AS a (id, attempt_number, started_at, finished_at, http_status, error, latency_ms, retry_after)
),
recorded AS (
    INSERT INTO notification_attempts (
        notification_id, attempt_number, claim_token, started_at, finished_at, http_status, error, latency_ms,
        dag_id, run_id, task_id, map_index, try_number
    )
    SELECT a.id, a.attempt_number, a.claim_token, a.started_at, a.finished_at, a.http_status, a.error,
        a.latency_ms, %(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s
    FROM attempt AS a
    WHERE NOT EXISTS (
        SELECT 1 FROM notification_attempts AS done
        WHERE done.notification_id = a.id AND done.claim_token = a.claim_token
    )
)
UPDATE notifications AS n
SET status = CASE WHEN a.error IS NULL THEN 'sent' ELSE 'failed' END,
    sent_at = CASE WHEN a.error IS NULL THEN a.finished_at END,
    attempts = n.attempts + 1,
    last_error = a.error,
    retry_after = a.retry_after,
    claim_token = NULL,
    claimed_at = NULL,
    updated_at = now()
FROM attempt AS a
WHERE n.id = a.id AND n.claim_token = a.claim_token
