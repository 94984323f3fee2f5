-- Fold the outcomes of one recorder flush into its endpoint's shared state, the row created on first use and
-- naming the connection that sent. failures: the requests of the flush that got no answer or a 5xx after its
-- last 2xx (all of them if none succeeded); succeeded: whether any got a 2xx, which resets the count first;
-- gone: whether any was answered 410 Gone, which disables the endpoint. The circuit breaker is open while the
-- count is at least breaker_failures; each flush with a failure while it is open puts the next probe
-- probe_interval ahead. The row lock serialises concurrent flushes, so no failure is lost from the count. Used
-- for flushes with a failure or a 410; one with 2xx answers only resets the count (deliver/reset_failures.sql).
INSERT INTO webhook_endpoints AS e (endpoint_sha256, conn_id, disabled_at, disabled_reason, consecutive_failures,
                                    breaker_opened_at, next_probe_at)
VALUES (
    %(endpoint_sha256)s, %(conn_id)s,
    CASE WHEN %(gone)s THEN now() END, CASE WHEN %(gone)s THEN %(gone_reason)s END,
    %(failures)s,
    CASE WHEN %(failures)s >= %(breaker_failures)s THEN now() END,
    CASE WHEN %(failures)s >= %(breaker_failures)s THEN now() + %(probe_interval)s::interval END
)
ON CONFLICT (endpoint_sha256) DO UPDATE
SET (consecutive_failures, breaker_opened_at, next_probe_at) = (
        SELECT c.failures,
            CASE WHEN c.failures >= %(breaker_failures)s THEN coalesce(e.breaker_opened_at, now()) END,
            CASE
                WHEN c.failures < %(breaker_failures)s THEN NULL
                WHEN %(failures)s > 0 OR e.next_probe_at IS NULL THEN now() + %(probe_interval)s::interval
                ELSE e.next_probe_at
            END
        FROM (SELECT CASE WHEN %(succeeded)s THEN 0 ELSE e.consecutive_failures END + %(failures)s AS failures) AS c
    ),
    conn_id = coalesce(excluded.conn_id, e.conn_id),
    disabled_at = coalesce(e.disabled_at, excluded.disabled_at),
    disabled_reason = CASE WHEN e.disabled_at IS NULL THEN excluded.disabled_reason ELSE e.disabled_reason END,
    updated_at = now()
