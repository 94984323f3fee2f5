-- The heartbeat of a live claim: its lease runs out lease_seconds after the database's now() again. A lease
-- that has already run out (or was ended) is not revived: its rows may belong to another claim by now.
UPDATE claim_leases
SET expires_at = now() + make_interval(secs => %(lease_seconds)s), renewed_at = now()
WHERE claim_token = %(claim_token)s AND expires_at > now()
