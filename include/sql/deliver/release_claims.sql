-- Hand claimed rows that must not be sent now back to planning: new instant, status and reason.
UPDATE notifications AS n
SET send_at = r.send_at, status = r.status, last_error = r.reason,
    claim_token = NULL, claimed_at = NULL, updated_at = now()
FROM unnest(%(ids)s::bigint[], %(send_ats)s::timestamptz[], %(statuses)s::text[], %(reasons)s::text[])
    AS r (id, send_at, status, reason)
WHERE n.id = r.id AND n.claim_token = %(claim_token)s
