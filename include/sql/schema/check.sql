-- Where the database stands, for the first task of every DAG, in one round trip: the migrations recorded with
-- their checksums, and the columns of the users relation the pipeline reads (with their types), whether it
-- exists and whether this role may read it. Fails with undefined_table when no migration was ever recorded.
SELECT
    (SELECT coalesce(array_agg(m.name ORDER BY m.name), '{}') FROM birthday_schema_migrations AS m) AS names,
    (SELECT coalesce(array_agg(m.checksum ORDER BY m.name), '{}') FROM birthday_schema_migrations AS m) AS checksums,
    to_regclass(%(users_relation)s) IS NOT NULL AS users_found,
    to_regclass(%(users_relation)s) IS NOT NULL
        AND has_table_privilege(to_regclass(%(users_relation)s), 'SELECT') AS users_readable,
    (
        SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
        FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass(%(users_relation)s) AND a.attnum > 0 AND NOT a.attisdropped
    ) AS users_columns,
    (
        SELECT coalesce(array_agg(format_type(a.atttypid, NULL) ORDER BY a.attnum), '{}')
        FROM pg_attribute AS a
        WHERE a.attrelid = to_regclass(%(users_relation)s) AND a.attnum > 0 AND NOT a.attisdropped
    ) AS users_types
