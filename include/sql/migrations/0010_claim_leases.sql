-- The lease of each claim: one row per claim token, renewed by its send task's heartbeat while it sends.
-- A `sending` row is under a live claim while its token has a row here whose expires_at is still ahead of the
-- database clock (now()); once it has passed, or the row is gone, the sweep may claim it again. The heartbeat
-- rewrites this one row, never the notifications of the batch. The task instance is named for operators.
CREATE TABLE IF NOT EXISTS claim_leases (
    claim_token  uuid PRIMARY KEY,
    expires_at   timestamptz NOT NULL,
    renewed_at   timestamptz NOT NULL DEFAULT now(),
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    dag_id       text,
    run_id       text,
    task_id      text,
    map_index    integer,
    try_number   integer
);

-- Claims made before leases had rows of their own keep the lease they had: birthday_lease_seconds (600 by
-- default) from their claim.
INSERT INTO claim_leases (claim_token, expires_at, renewed_at, claimed_at)
SELECT claim_token, max(claimed_at) + interval '600 seconds', max(claimed_at), max(claimed_at)
FROM notifications
WHERE status = 'sending' AND claim_token IS NOT NULL
GROUP BY claim_token
ON CONFLICT (claim_token) DO NOTHING;
