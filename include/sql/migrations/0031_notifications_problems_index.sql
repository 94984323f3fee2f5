-- birthday_pipeline: no-transaction index=notifications_problems_updated_at_idx
-- The alerts look for problem notifications changed recently (alerts/claim_problems.sql).
CREATE INDEX CONCURRENTLY IF NOT EXISTS notifications_problems_updated_at_idx
    ON notifications (updated_at) WHERE status IN ('failed', 'expired', 'invalid')
