"""``make run`` stores the settings as the one JSON Variable ``birthday_settings`` (tools/dev.py), through the
real ``airflow variables`` commands on the test session's metadata database."""

from __future__ import annotations

import json
import os

from birthday_pipeline.settings import SETTINGS_ENVIRONMENT, SETTINGS_VARIABLE, Settings


def test_make_run_stores_birthday_settings_and_keeps_it(app_database_url, monkeypatch) -> None:
    from airflow.models import Variable

    from tools.dev import store_variables

    monkeypatch.delenv(SETTINGS_ENVIRONMENT, raising=False)
    try:
        store_variables(dict(os.environ), demo_time="10:11:12")

        stored = json.loads(Variable.get(SETTINGS_VARIABLE))
        assert stored == {**Settings().as_json(), "send_local_time": "10:11:12"}

        # A second start keeps what is stored (an operator's edits included).
        Variable.set(SETTINGS_VARIABLE, json.dumps({**stored, "batch_size": 250, "max_in_flight": "40"}))
        store_variables(dict(os.environ), demo_time=None)
        settings = Settings.read(lambda name: Variable.get(name, default_var=None))
        assert (settings.send_local_time.isoformat(), settings.batch_size, settings.max_in_flight) == (
            "10:11:12", 250, 40)
    finally:
        Variable.delete(SETTINGS_VARIABLE)
