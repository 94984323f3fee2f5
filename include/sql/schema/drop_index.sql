-- An INVALID index left by a failed concurrent build, dropped so that its migration can build it again;
-- the index placeholder is the name its migration gives in its no-transaction index= directive.
DROP INDEX CONCURRENTLY IF EXISTS {index}
