-- Record HTTP attempts of one claim (a flush of the recorder: a few hundred at most) and move each row the
-- claim still holds to the status its outcome gives it: sent, failed, or scheduled again (answered 410 Gone: it
-- waits for its endpoint to be enabled again). A failed row may be tried again from its retry_after on; NULL
-- means the failure was permanent. An attempt not counted (a failed probe of an open circuit breaker tests the
-- endpoint, not the row) is recorded without adding to the row's attempts. Each attempt names the Airflow task
-- instance that made it (NULLs outside a task). Returns the ids of the rows moved.
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
        %(latencies_ms)s::double precision[], %(retry_afters)s::timestamptz[], %(statuses)s::text[],
        %(counted)s::boolean[]
    ) AS a (id, attempt_number, started_at, finished_at, http_status, error, latency_ms, retry_after, status,
            counted)
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
SET status = a.status,
    sent_at = CASE WHEN a.error IS NULL THEN a.finished_at END,
    attempts = n.attempts + CASE WHEN a.counted THEN 1 ELSE 0 END,
    last_error = a.error,
    retry_after = a.retry_after,
    claim_token = NULL,
    claimed_at = NULL,
    updated_at = now()
FROM attempt AS a
WHERE n.id = a.id AND n.claim_token = a.claim_token
RETURNING n.id
