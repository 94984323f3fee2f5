"""The hourly DAG's wait for a batch's release: Airflow's ``DateTimeSensorAsync`` given one instant per mapped
task group (imported by ``dags/birthday_notifications.py``)."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync


class ReleaseSensor(DateTimeSensorAsync):
    """``DateTimeSensorAsync`` whose ``target_time`` is the mapped task group's ``release_at``.

    Inside a mapped task group ``target_time`` is a mapped argument, which Airflow resolves for each map index when
    the task runs (it is a template field). The standard provider before 1.21 checks its type when the DAG is
    parsed and refuses it ("TypeError: Expected str or datetime.datetime type for target_time. Got <class
    '...MappedArgument'>"), so the DAG file would not import; 1.21 dropped the check and keeps the value as
    given. This does what 1.21 does on every standard provider: the empty string only passes the old check and is
    replaced at once. The wait itself is the provider's: the same ``DateTimeTrigger`` on the triggerer.
    """

    def __init__(self, *, target_time: Any, **kwargs: Any) -> None:
        super().__init__(target_time="", **kwargs)
        self.target_time = target_time
