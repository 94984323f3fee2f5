-- 0002's unique (user_id, occasion, occasion_date) is implied by 0013's one per user, occasion and year (a
-- date lies in one year), and no statement names it any more; keeping it doubled the random B-tree writes
-- of every planned row, which with a year of history are most of what planning costs (docs/performance.md).
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_user_occasion_date_key;
