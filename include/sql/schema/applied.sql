-- Every migration recorded in this database, in name order.
SELECT name, checksum, skipped, applied_at
FROM birthday_schema_migrations
ORDER BY name
