-- The pace of requests to each webhook endpoint, shared by every send task: the next free send slot.
-- Tasks reserve slots from here when birthday_max_requests_per_second is set (see deliver/reserve_send_slots.sql).
CREATE TABLE IF NOT EXISTS send_pacing (
    endpoint   text PRIMARY KEY,
    next_slot  timestamptz NOT NULL
);
