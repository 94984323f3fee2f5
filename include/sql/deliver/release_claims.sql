-- Hand claimed rows that must not be sent now back to planning: the re-planned date and instant, the new
-- status and its reason (the date stays within the row's year, so the row stays that year's notification).
UPDATE notifications AS n
SET occasion_date = r.occasion_date, send_at = r.send_at, status = r.status, last_error = r.reason,
    claim_token = NULL, claimed_at = NULL, updated_at = now()
FROM unnest(%(ids)s::bigint[], %(occasion_dates)s::date[], %(send_ats)s::timestamptz[], %(statuses)s::text[],
            %(reasons)s::text[]) AS r (id, occasion_date, send_at, status, reason)
WHERE n.id = r.id AND n.claim_token = %(claim_token)s
