"""Every id that more than one place names: DAGs, the tasks other code depends on, connections, the settings
Variable and the send pool. Import them; never type the strings again.

Imported by the DAG files while they are parsed: constants only, no imports.
"""

# DAG ids.
HOURLY_DAG = "birthday_notifications"
SWEEP_DAG = "birthday_sweep"
RESEND_DAG = "birthday_resend"
RETENTION_DAG = "birthday_retention"
MIGRATE_DAG = "birthday_migrate"
ENDPOINT_DAG = "birthday_endpoint"

# Task and group ids other code depends on: the sending tasks (the cluster policy, the benchmarks' history).
RELEASE_GROUP = "release"  # the hourly DAG's mapped group: wait for the instant, then send_batch
SEND_BATCH_TASK = "send_batch"  # in the hourly DAG's release group and in the sweep
RESEND_TASK = "resend"

# Connection ids.
DB_CONN = "birthday_db"
WEBHOOK_CONN = "birthday_webhook"
ALERTS_CONN = "birthday_alerts"  # optional: without it no alerts are sent (docs/operations.md)

# The JSON Variable that holds every setting (birthday_pipeline.settings).
SETTINGS_VARIABLE = "birthday_settings"

# The pool the opt-in cluster policy puts the sending tasks in (birthday_pipeline.edge.cluster_policy).
SEND_POOL = "birthday_send"
