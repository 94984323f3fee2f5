-- Open the lease of a new claim: it runs out lease_seconds after the database's now() unless renewed.
INSERT INTO claim_leases (claim_token, expires_at, dag_id, run_id, task_id, map_index, try_number)
VALUES (%(claim_token)s, now() + make_interval(secs => %(lease_seconds)s), %(dag_id)s, %(run_id)s, %(task_id)s,
        %(map_index)s, %(try_number)s)
