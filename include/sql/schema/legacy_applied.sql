-- The migrations recorded by the runner from before checksums (read-only: status does not adopt them).
SELECT name, NULL::text AS checksum, NULL::text AS skipped, applied_at
FROM schema_migrations
ORDER BY name
