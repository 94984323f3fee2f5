"""The pipeline's settings as Airflow components read them: one lookup of the Variable ``birthday_settings``, and
the one Airflow setting planning obeys (``[core] max_map_length``).

Tasks and the API server (the Birthdays page) read the same Variable through the same ``Settings.read``; only
the Variable client differs, as Airflow's components do.
"""

from __future__ import annotations

from birthday_pipeline.settings import Settings


def read_settings() -> Settings:
    """The settings as a task reads them, through the Task SDK's Variable (its supervisor does the lookup)."""
    from airflow.sdk import Variable

    return Settings.read(lambda name: Variable.get(name, default=None))


def read_settings_in_api_server() -> Settings:
    """The settings as the API server reads them. It runs no Task SDK supervisor, so Airflow's own Variable
    model reads the secrets backends and the metadata database here."""
    # airflow.sdk's Variable needs the supervisor, which the API server does not run.
    from airflow.models import Variable

    return Settings.read(lambda name: Variable.get(name, default_var=None))  # noqa: AIR311


def max_mapped_tasks() -> int:
    """Airflow's ``[core] max_map_length`` (1024 by default): more release batches than this and the mapped group
    fails to expand, so planning never returns more."""
    from birthday_pipeline.edge.airflow_versions import airflow_conf

    return airflow_conf().getint("core", "max_map_length", fallback=1024)
