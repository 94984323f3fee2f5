-- Upsert one notification of one occasion per user whose send instant lies in the window being planned.
-- The source_date placeholder is the occasion's date column (u.birthday, u.hired_on, ...), composed from the occasions of
-- the settings (include/birthday_pipeline/rules/occasions.py); users without that date have no such occasion. The users placeholder is the
-- users relation (the users_relation setting), a composed identifier.
-- The slot arrays describe the window: for each zone, the local date whose send time falls inside it, the birth
-- month-days celebrated that day and the instant, all computed in Python from the pinned tz database.
-- A NULL zone plans in the default zone; an unknown zone plans in the default zone too, as 'invalid'.
-- A row that cannot be sent is 'invalid' with no instant and a reason: first an id with differing rows
-- (planning.not_unique_reason), then the checks in the order and with the words of planning.invalid_reason:
-- unknown zone (naming the zone it likely meant, echoing at most max_zone_shown characters), no name, a name too
-- long for a message, a date before year 1, an occasion date not in the past. Blank means the characters of the
-- blanks parameter, the string birthday_pipeline.rules.blanks builds and Python strips too.
-- A user has one notification per occasion and year (notifications_user_occasion_year_key). When a rule or the
-- user's data moved the celebrated date or the instant, that row is re-planned if it was never sent: scheduled,
-- invalid, or cancelled (its date had been removed), or expired at a date that is no longer the one celebrated.
-- Rows claimed, sent or failed are never touched (the sender re-checks what it claims), and an unchanged row is
-- not rewritten. Returns how many rows were inserted, the ids of the rows re-planned, how many of the rows
-- written are scheduled, invalid and cancelled (opted out), and how many rows of the window's month-days have no id.
-- version_dates lists every occasion's date column (v.birthday, v.hired_on, ...) and the locale and opt-out
-- columns: the rows of one id are versions of that user when they differ in any column the pipeline reads.
-- opt_out is the users column of the opt_out_column setting (NULL when it is not set): a user whose column holds
-- true is planned 'cancelled' with the reason opted_out_reason and the instant kept (the Birthdays page lists it on
-- its day); only an id that is not unique outranks it. A user who opts in again is re-planned like any change.
-- The candidates are computed once (MATERIALIZED), so each user's planning zone is a column the join can hash
-- with the slot's zone and month-day. Inlined, the zone test would be a join filter run once per (user, slot)
-- of the same month-day: for the sweep's 48-hour window at 10 M users, 32 million evaluations and about 9 s
-- (docs/performance.md); computed once, the sweep's upsert takes 1 s and the busiest hour's the same either way.
WITH slot AS (
    SELECT *
    FROM unnest(
        %(slot_zones)s::text[],
        %(slot_birth_month_days)s::integer[],
        %(slot_occasion_dates)s::date[],
        %(slot_send_ats)s::timestamptz[]
    ) AS s (zone, birth_month_day, occasion_date, send_at)
),
-- The users relation is a team's table or view, so any row may be odd: NULL or repeated ids, NULL names or zones,
-- dates PostgreSQL holds but no calendar has (before year 1), text in columns of other types. Each such row is
-- its own problem and never fails the statement for the others: every column is read as the type the rules
-- need (text for names and zones, a NULL name counting as empty), the rows of one id that repeat the same
-- values are one user (a view with a one-to-many join), an id whose rows differ is 'invalid' as not unique, and
-- rows without an id are counted (without_id) and otherwise skipped: no notification can name them.
read AS (
    SELECT DISTINCT
        u.id,
        u.timezone::text AS timezone,
        coalesce(u.first_name::text, '') AS first_name,
        coalesce(u.last_name::text, '') AS last_name,
        {source_date} AS source_date,
        coalesce({opt_out}::boolean, false) AS opted_out
    FROM {users} AS u
    WHERE (extract(month FROM {source_date}) * 100 + extract(day FROM {source_date}))::integer
        = ANY (%(birth_month_days)s::integer[])
),
candidate AS MATERIALIZED (
    -- One row per id, the first of its versions in a fixed order, so a repeated id plans one (invalid) row.
    SELECT DISTINCT ON (r.id)
        r.id AS user_id,
        r.timezone,
        r.first_name,
        r.last_name,
        r.source_date,
        r.opted_out,
        (extract(month FROM r.source_date) * 100 + extract(day FROM r.source_date))::integer AS birth_month_day,
        {shared/user_versions} AS versions,
        r.timezone IS NOT NULL AND r.timezone <> ALL (%(known_zones)s::text[]) AS zone_unknown,
        CASE
            WHEN r.timezone = ANY (%(known_zones)s::text[]) THEN r.timezone
            ELSE %(default_zone)s
        END AS plan_zone
    FROM read AS r
    WHERE r.id IS NOT NULL
    ORDER BY r.id, r.source_date, r.timezone, r.first_name, r.last_name, r.opted_out
),
checked AS (
    SELECT
        c.user_id,
        s.occasion_date,
        s.send_at,
        c.opted_out AND c.versions <= 1 AS opted_out,
        CASE
            WHEN c.versions > 1 THEN 'id is not unique: the users relation has ' || c.versions || ' different rows for it'
            WHEN c.opted_out THEN %(opted_out_reason)s
            WHEN c.zone_unknown THEN
                'unknown time zone "' || left(c.timezone, %(max_zone_shown)s)
                || CASE WHEN length(c.timezone) > %(max_zone_shown)s THEN '…' ELSE '' END || '"'
                || coalesce('; did you mean "' || (
                    SELECT z.name
                    FROM unnest(%(folded_zones)s::text[], %(known_zones)s::text[]) AS z (folded, name)
                    WHERE z.folded = lower(btrim(c.timezone, %(blanks)s))
                        -- ASCII only, once trimmed
                        AND octet_length(btrim(c.timezone, %(blanks)s)) = length(btrim(c.timezone, %(blanks)s))
                ) || '"?', '')
            WHEN btrim(c.first_name || c.last_name, %(blanks)s) = '' THEN 'user has no name'
            WHEN length(c.first_name) > %(max_name_length)s
                THEN 'first_name longer than ' || %(max_name_length)s || ' characters'
            WHEN length(c.last_name) > %(max_name_length)s
                THEN 'last_name longer than ' || %(max_name_length)s || ' characters'
            WHEN c.source_date < %(first_date)s THEN %(before_first_date_reason)s
            WHEN c.source_date >= s.occasion_date THEN %(not_in_past_reason)s
        END AS reason
    FROM candidate AS c
    JOIN slot AS s ON s.zone = c.plan_zone AND s.birth_month_day = c.birth_month_day
),
upserted AS (
    INSERT INTO notifications AS n (user_id, occasion, occasion_date, send_at, status, last_error)
    SELECT
        user_id,
        %(occasion)s,
        occasion_date,
        CASE WHEN reason IS NULL OR opted_out THEN send_at END,
        CASE WHEN reason IS NULL THEN 'scheduled' WHEN opted_out THEN 'cancelled' ELSE 'invalid' END,
        reason
    FROM checked
    ORDER BY user_id, occasion_date  -- new rows get their ids in user order, whichever join the planner picks
    ON CONFLICT (user_id, occasion, (extract(year FROM occasion_date)::integer)) DO UPDATE
    SET occasion_date = excluded.occasion_date,
        send_at = excluded.send_at,
        status = excluded.status,
        last_error = excluded.last_error,
        updated_at = now()
    WHERE (
            n.status IN ('scheduled', 'invalid', 'cancelled')
            OR (n.status = 'expired' AND n.occasion_date <> excluded.occasion_date)
        )
        AND (n.occasion_date, n.send_at, n.status, n.last_error)
            IS DISTINCT FROM (excluded.occasion_date, excluded.send_at, excluded.status, excluded.last_error)
    -- A row created before this statement's transaction was updated, not inserted.
    RETURNING n.id, n.status, n.created_at = now() AS inserted
)
SELECT
    count(*) FILTER (WHERE inserted) AS inserted,
    coalesce(array_agg(id ORDER BY id) FILTER (WHERE NOT inserted), ARRAY[]::bigint[]) AS replanned_ids,
    count(*) FILTER (WHERE status = 'scheduled') AS scheduled,
    count(*) FILTER (WHERE status = 'invalid') AS invalid,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    (SELECT count(*) FROM read WHERE id IS NULL) AS without_id
FROM upserted
