-- Upsert one notification per user whose send instant lies in the window being planned.
-- The slot arrays describe the window: for each zone, the local date whose send time falls inside it, the birth
-- month-days celebrated that day and the instant, all computed in Python from the pinned tz database.
-- A NULL zone plans in the default zone; an unknown zone plans in the default zone too, as 'invalid'.
-- Rows already claimed or finished are never touched, and an unchanged row is not rewritten.
WITH slot AS (
    SELECT *
    FROM unnest(
        %(slot_zones)s::text[],
        %(slot_birth_month_days)s::integer[],
        %(slot_occasion_dates)s::date[],
        %(slot_send_ats)s::timestamptz[]
    ) AS s (zone, birth_month_day, occasion_date, send_at)
),
candidate AS (
    SELECT
        u.id AS user_id,
        u.timezone,
        (extract(month FROM u.birthday) * 100 + extract(day FROM u.birthday))::integer AS birth_month_day,
        u.timezone IS NOT NULL AND u.timezone <> ALL (%(known_zones)s::text[]) AS zone_unknown,
        CASE
            WHEN u.timezone = ANY (%(known_zones)s::text[]) THEN u.timezone
            ELSE %(default_zone)s
        END AS plan_zone
    FROM users AS u
    WHERE (extract(month FROM u.birthday) * 100 + extract(day FROM u.birthday))::integer
        = ANY (%(birth_month_days)s::integer[])
)
INSERT INTO notifications AS n (user_id, occasion, occasion_date, send_at, status, last_error)
SELECT
    c.user_id,
    %(occasion)s,
    s.occasion_date,
    CASE WHEN c.zone_unknown THEN NULL ELSE s.send_at END,
    CASE WHEN c.zone_unknown THEN 'invalid' ELSE 'scheduled' END,
    CASE WHEN c.zone_unknown THEN 'unknown time zone: ' || c.timezone END
FROM candidate AS c
JOIN slot AS s ON s.zone = c.plan_zone AND s.birth_month_day = c.birth_month_day
ON CONFLICT (user_id, occasion, occasion_date) DO UPDATE
SET send_at = excluded.send_at,
    status = excluded.status,
    last_error = excluded.last_error,
    updated_at = now()
WHERE n.status IN ('scheduled', 'invalid')
    AND (n.send_at, n.status, n.last_error) IS DISTINCT FROM (excluded.send_at, excluded.status, excluded.last_error)
