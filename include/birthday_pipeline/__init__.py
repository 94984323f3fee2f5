"""Birthday pipeline: time-zone-aware webhook messages at 9 AM local time, on Apache Airflow 3.

The package, in the order a notification goes through it::

    rules/     pure time and data rules: calendar dates, 29 February, 9 AM instants (calendar), IANA and Rails
               zones (timezones, rails_zones), blank text (blanks), the occasion registry (occasions),
               safe templates (templates), language tags (locales), request body shapes (payloads)
    supported  the Airflow releases it runs on: importing the package on an older one fails at once, saying so
    settings   the Settings model and its parsing from text (the Variable lookup is edge's)
    ids        every DAG, task, connection, Variable and pool id named in more than one place
    status     the notification statuses (Status), as the schema's CHECK constraint allows them
    db/        connections and rows by name (connections), the SQL loader (statements), the page's pool (pool)
    schema/    the migration files (files), their runner (runner), where a database stands (status), the check
               every DAG starts with (check) and the command line (cli, ``python -m birthday_pipeline.schema``)
    plan/      who is due in a window (planning), the late window the sweep re-plans and expires (sweep)
    deliver/   claim under a lease, re-check, render and sign, send paced and fanned out, record every attempt,
               keep each endpoint's state (endpoints: disabled after a 410, the circuit breaker)
    operate/   window reports, alerts, metrics, the Prometheus text, retention and the manual resend
    edge/      where Airflow meets the package: Variables, connections, the running task instance, the webhook
               and alert clients, the cluster policy, and one module of task bodies per DAG

Imports go one way: edge -> operate / deliver / plan -> rules / db / settings (and ids, status, schema).
Only edge touches Airflow's runtime: Variables, connections, hooks and the task instance, which the DAG files
hand in. Nothing below edge imports Airflow's runtime context or models. The SQL lives in include/sql/
(package data ``birthday_pipeline.sql``).
"""

from birthday_pipeline.supported import require_supported_airflow

require_supported_airflow()
