-- Record one batch's HTTP attempts and move each row it still holds to sent or failed.
-- A failed row may be tried again from its retry_after on; NULL means the failure was permanent.
-- Each attempt names the Airflow task instance that made it (NULLs outside a task).
WITH attempt AS (
    SELECT *
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
    SELECT id, attempt_number, %(claim_token)s, started_at, finished_at, http_status, error, latency_ms,
        %(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s
    FROM attempt
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
WHERE n.id = a.id AND n.claim_token = %(claim_token)s
