-- Users first_id..last_id, all in one zone and born on one day, so their birthday messages fall due at one instant.
INSERT INTO users (id, first_name, last_name, birthday, timezone)
SELECT id, 'Ada', 'Lovelace', %(born)s, %(zone)s FROM generate_series(%(first_id)s, %(last_id)s) AS id
