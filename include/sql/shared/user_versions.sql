-- How many rows of the users relation that differ in a column the pipeline reads hold the id versions_of: more
-- than one makes the user invalid (`id is not unique`), the same rule wherever a user is read. versions_of is the
-- outer column holding the id, composed as an identifier (n.user_id, u.id, r.id); version_dates lists every
-- occasion's date column and the locale and opt-out columns over alias v; users is the users relation. One index lookup by id per row it is
-- evaluated for: keep the relation's id indexed (docs/deploy.md).
(
    SELECT count(*)
    FROM (
        SELECT DISTINCT v.first_name::text, v.last_name::text, v.timezone::text, {version_dates}
        FROM {users} AS v
        WHERE v.id = {versions_of}
    ) AS version
)
