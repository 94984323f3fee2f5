-- Record one migration as applied, or as skipped with the reason.
INSERT INTO birthday_schema_migrations (name, checksum, skipped)
VALUES (%(name)s, %(checksum)s, %(skipped)s)
