-- Adopt the pipeline's table of migrations from before checksums: the migrations it lists stay applied.
ALTER TABLE schema_migrations RENAME TO birthday_schema_migrations;
ALTER TABLE birthday_schema_migrations ADD COLUMN checksum text, ADD COLUMN skipped text;
