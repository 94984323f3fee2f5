-- The session's application_name (what pg_stat_activity shows), for the rest of the session: SET takes no
-- parameters, so the value is bound through set_config.
SELECT set_config('application_name', %(application_name)s, false)
