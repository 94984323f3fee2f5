-- Users 1..count in UTC born on %(born)s, each with a notification due at %(send_at)s.
INSERT INTO users (id, first_name, last_name, birthday, timezone)
SELECT id, 'Ada', 'Lovelace', %(born)s, 'UTC' FROM generate_series(1, %(count)s) AS id;
INSERT INTO notifications (user_id, occasion_date, send_at)
SELECT id, %(occasion_date)s, %(send_at)s FROM users ORDER BY id
