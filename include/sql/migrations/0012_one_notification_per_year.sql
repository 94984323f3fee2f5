-- One notification per user, occasion and year (the year of the celebrated date, which always lies in the
-- year celebrated): a rule change such as birthday_feb29_rule moves that year's row instead of planning a
-- second one. Before 0013 can build the unique index, rows that share a user, occasion and year (left by
-- such a change, or by a birthday changed after planning) are merged into one: the row kept is the one sent
-- first, else one being sent, else the most recently updated; the attempts of the others move to it (so the
-- history of every request stays), then the others are deleted.
CREATE TEMPORARY TABLE merged_notifications ON COMMIT DROP AS
WITH duplicated AS (
    SELECT user_id, occasion, extract(year FROM occasion_date) AS year
    FROM notifications
    GROUP BY 1, 2, 3
    HAVING count(*) > 1
),
ranked AS (
    SELECT
        n.id,
        first_value(n.id) OVER year_rows AS kept_id,
        row_number() OVER year_rows AS rank
    FROM notifications AS n
    JOIN duplicated AS d
        ON d.user_id = n.user_id AND d.occasion = n.occasion AND d.year = extract(year FROM n.occasion_date)
    WINDOW year_rows AS (
        PARTITION BY n.user_id, n.occasion, extract(year FROM n.occasion_date)
        ORDER BY n.status = 'sent' DESC, n.sent_at NULLS LAST, n.status = 'sending' DESC, n.updated_at DESC, n.id
    )
)
SELECT id, kept_id FROM ranked WHERE rank > 1;

UPDATE notification_attempts AS a
SET notification_id = m.kept_id
FROM merged_notifications AS m
WHERE a.notification_id = m.id;

DELETE FROM notifications AS n
USING merged_notifications AS m
WHERE n.id = m.id;
