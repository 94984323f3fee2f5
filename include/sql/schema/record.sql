-- Record one migration as applied, or as skipped with the reason; the row as recorded, on the database's clock.
INSERT INTO birthday_schema_migrations (name, checksum, skipped)
VALUES (%(name)s, %(checksum)s, %(skipped)s)
RETURNING name, checksum, skipped, applied_at
