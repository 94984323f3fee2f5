-- ClaimedRow's columns, what a claim returns for each row it took: the row, and its user's fields read as
-- plan/upsert_notifications.sql reads them (names as text, NULL as empty). A user id with rows that differ in
-- them (user_versions above 1) makes the claimed row invalid in the re-check. The date_columns placeholder lists
-- every occasion's users column, composed from the occasion registry, version_dates those and the locale and
-- opt-out columns; locale and opt_out are those columns (the locale_column and opt_out_column settings, NULL when
-- not set), the locale read as text, opted_out true only when the column holds true; users
-- is the users relation (the users_relation setting), a composed identifier, joined to n as u. Returned by
-- deliver/claim.sql and resend/claim.sql, so the same send code delivers what either claims, and read again by
-- deliver/look_again.sql just before the instant.
n.id, n.user_id, n.occasion, n.occasion_date, n.send_at, n.webhook_id, n.attempts,
    coalesce(u.first_name::text, '') AS first_name, coalesce(u.last_name::text, '') AS last_name,
    u.timezone::text AS timezone, {date_columns},
    {locale}::text AS locale, coalesce({opt_out}::boolean, false) AS opted_out,
    {shared/user_versions} AS user_versions
