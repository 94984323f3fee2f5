-- Forget leases that ran out: their claims are over (a run-out lease is never renewed), so their rows are
-- free to claim whether the row is here or not. Ended leases are deleted by their own tasks.
DELETE FROM claim_leases WHERE expires_at <= now()
