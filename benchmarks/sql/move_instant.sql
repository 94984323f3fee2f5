-- Move the rows of one batch (an id range) to a new instant of the same day, as if planned for it: the send
-- task's re-check agrees once send_local_time is that instant's time.
UPDATE notifications
SET send_at = %(send_at)s
WHERE id BETWEEN %(first_id)s AND %(last_id)s
