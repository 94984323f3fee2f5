-- Whether this database holds the pipeline's table of migrations from before checksums: schema_migrations
-- with exactly the columns name and applied_at (a Rails application's schema_migrations has a version column).
SELECT count(*) FILTER (WHERE a.attname IN ('name', 'applied_at')) = 2 AND count(*) = 2 AS ours
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass('schema_migrations') AND a.attnum > 0 AND NOT a.attisdropped
