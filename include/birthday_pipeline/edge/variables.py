"""The pipeline's settings as a task reads them: one Airflow Variable lookup per task."""

from __future__ import annotations

from birthday_pipeline.settings import Settings


def read_settings() -> Settings:
    """The pipeline's settings with one Variable lookup (``birthday_settings``; see ``Settings.read``)."""
    from airflow.sdk import Variable

    return Settings.read(lambda name: Variable.get(name, default=None))
