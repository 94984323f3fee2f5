-- Whether the index of this name is usable: false for one a failed CREATE INDEX CONCURRENTLY left behind,
-- no row when there is no such index.
SELECT i.indisvalid AS valid
FROM pg_index AS i
WHERE i.indexrelid = to_regclass(%(index)s)
