-- SET LOCAL lock_timeout, with the value bound (SET takes no parameters): DDL that waits this long for a
-- lock gives up instead of queueing every later query on the table behind it.
SELECT set_config('lock_timeout', %(lock_timeout)s, true)
