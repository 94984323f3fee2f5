"""A secrets backend that finds nothing and records every Variable lookup made through it.

Configured as Airflow's ``[secrets] backend``, it is asked first for every Variable anyone reads, so a test can
count the lookups a task makes; the lookups then go on to the environment and the metadata database. Under
``dag.test()`` the execution API that answers a task runs in the same process and looks the Variable up
again on the server side: those lookups are recorded apart.
"""

from __future__ import annotations

import sys

from airflow.secrets import BaseSecretsBackend


class CountingSecretsBackend(BaseSecretsBackend):
    task_lookups: list[str] = []
    server_lookups: list[str] = []

    def get_variable(self, key: str) -> None:
        frame = sys._getframe()
        while frame is not None:
            if frame.f_globals.get("__name__", "").startswith("airflow.api_fastapi"):
                CountingSecretsBackend.server_lookups.append(key)
                return None
            frame = frame.f_back
        CountingSecretsBackend.task_lookups.append(key)
        return None

    def get_conn_value(self, conn_id: str) -> None:
        return None

    @classmethod
    def forget(cls) -> None:
        cls.task_lookups.clear()
        cls.server_lookups.clear()
