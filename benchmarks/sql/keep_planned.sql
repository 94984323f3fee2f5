-- Keep the rows planning wrote (those after last_id), to write them again with no planning at all (the write floor).
DROP TABLE IF EXISTS planned;
CREATE TEMP TABLE planned AS
SELECT user_id, occasion, occasion_date, send_at, status, last_error FROM notifications WHERE id > %(last_id)s
