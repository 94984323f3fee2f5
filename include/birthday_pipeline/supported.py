"""The Airflow releases the package runs on (docs/deploy.md, "Supported versions"). Importing the package on an
older Airflow fails at once and says so, instead of failing later in a task with a message that does not."""

from __future__ import annotations

import re
from importlib import metadata

OLDEST_AIRFLOW = (3, 1)
AIRFLOW_DISTRIBUTION = "apache-airflow-core"


class UnsupportedAirflowError(ImportError):
    """The installed Airflow is older than OLDEST_AIRFLOW."""


def unsupported_reason(airflow_version: str) -> str | None:
    """Why the package cannot run on Airflow ``airflow_version`` (e.g. ``3.0.6``), or None where it can."""
    found = re.match(r"(\d+)\.(\d+)", airflow_version)
    if found is None or (int(found[1]), int(found[2])) >= OLDEST_AIRFLOW:
        return None
    return (
        f"birthday-pipeline needs Apache Airflow {'.'.join(map(str, OLDEST_AIRFLOW))} or newer; this environment "
        f"has Airflow {airflow_version}. Airflow 3.0's HTTP provider (5.3) has no HttpAsyncHook.config(), which "
        "the webhook client sends through (docs/deploy.md, 'Supported versions')."
    )


def require_supported_airflow() -> None:
    """Raise UnsupportedAirflowError on an Airflow older than OLDEST_AIRFLOW; nothing where Airflow is absent
    (the pure modules, used by tools without it)."""
    try:
        installed = metadata.version(AIRFLOW_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return
    reason = unsupported_reason(installed)
    if reason is not None:
        raise UnsupportedAirflowError(reason)
