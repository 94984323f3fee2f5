-- The write floor: the same rows planning writes, inserted with nothing to compute or look up.
INSERT INTO notifications (user_id, occasion, occasion_date, send_at, status, last_error)
SELECT user_id, occasion, occasion_date, send_at, status, last_error FROM planned
