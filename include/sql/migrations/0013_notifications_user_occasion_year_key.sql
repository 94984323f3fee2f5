-- birthday_pipeline: no-transaction index=notifications_user_occasion_year_key
-- One notification per user, occasion and year: planning upserts on this index (see 0012 and
-- plan/upsert_notifications.sql, whose ON CONFLICT names the same expression).
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS notifications_user_occasion_year_key
    ON notifications (user_id, occasion, (extract(year FROM occasion_date)::integer));
