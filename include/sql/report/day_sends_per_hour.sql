-- Deliveries made in each local hour of one day, per occasion. The hours ([hour_start, hour_end) in UTC,
-- 23 to 25 of them) come from Python's tz database, so a day across a DST change has its real hours.
SELECT h.hour_start AS hour, n.occasion, count(*) AS count
FROM unnest(%(hour_starts)s::timestamptz[], %(hour_ends)s::timestamptz[]) AS h (hour_start, hour_end)
JOIN notifications AS n ON n.sent_at >= h.hour_start AND n.sent_at < h.hour_end
WHERE n.status = 'sent'
GROUP BY h.hour_start, n.occasion
ORDER BY h.hour_start, n.occasion
