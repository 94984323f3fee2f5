"""``make run`` stores the settings as the one JSON Variable ``birthday_settings`` (tools/dev.py), through the
real ``airflow variables`` commands on the test session's metadata database."""

from __future__ import annotations

import json
import os

from birthday_pipeline.settings import SETTINGS_VARIABLE, Settings


def test_make_run_moves_separate_variables_into_birthday_settings_and_keeps_it(app_database_url) -> None:
    from airflow.models import Variable

    from tools.dev import store_variables

    Variable.set("birthday_batch_size", "250")
    Variable.set("birthday_lease_seconds", "300")
    try:
        store_variables(dict(os.environ), demo_time="10:11:12")

        stored = json.loads(Variable.get(SETTINGS_VARIABLE))
        assert stored == {**Settings().as_json(), "batch_size": "250", "lease_seconds": "300",
                          "send_local_time": "10:11:12"}
        assert Variable.get("birthday_batch_size", default_var=None) is None
        assert Variable.get("birthday_lease_seconds", default_var=None) is None

        # A second start keeps what is stored (an operator's edits included).
        Variable.set(SETTINGS_VARIABLE, json.dumps({**stored, "max_in_flight": "40"}))
        store_variables(dict(os.environ), demo_time=None)
        settings = Settings.read(lambda name: Variable.get(name, default_var=None), environment={})
        assert (settings.batch_size, settings.lease_seconds, settings.max_in_flight) == (250, 300, 40)
    finally:
        for name in (SETTINGS_VARIABLE, "birthday_batch_size", "birthday_lease_seconds"):
            Variable.delete(name)
