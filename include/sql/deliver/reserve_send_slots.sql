-- Reserve the next count send slots of one endpoint (named by the SHA-256 of its URL), interval apart, and
-- return the first. Slots never start in the past, and the row lock serialises concurrent reservations,
-- so the slots handed to all tasks together are contiguous and never overlap.
INSERT INTO send_pacing AS p (endpoint_sha256, next_slot)
VALUES (%(endpoint_sha256)s, %(now)s::timestamptz + %(count)s * %(interval)s::interval)
ON CONFLICT (endpoint_sha256) DO UPDATE
SET next_slot = greatest(p.next_slot, %(now)s::timestamptz) + %(count)s * %(interval)s::interval
RETURNING next_slot - %(count)s * %(interval)s::interval AS first_slot
