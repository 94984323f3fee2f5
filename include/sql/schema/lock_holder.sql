-- The server process holding the migration lock, if another session does.
SELECT l.pid
FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
    AND l.objid = %(key)s::bigint::oid AND l.classid = 0 AND l.objsubid = 1
