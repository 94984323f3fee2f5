-- Reserve the next %(count)s send slots of one endpoint, %(interval)s apart, and return the first.
-- Slots never start in the past, and the row lock serialises concurrent reservations, so the slots handed
-- to all tasks together are contiguous and never overlap.
INSERT INTO send_pacing AS p (endpoint, next_slot)
VALUES (%(endpoint)s, %(now)s::timestamptz + %(count)s * %(interval)s::interval)
ON CONFLICT (endpoint) DO UPDATE
SET next_slot = greatest(p.next_slot, %(now)s::timestamptz) + %(count)s * %(interval)s::interval
RETURNING next_slot - %(count)s * %(interval)s::interval
