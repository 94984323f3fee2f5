-- An INVALID index left by a failed concurrent build, dropped so that its migration can build it again;
-- the index placeholder is the quoted name read from that migration.
DROP INDEX CONCURRENTLY IF EXISTS {index}
