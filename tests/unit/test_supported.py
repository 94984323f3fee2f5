"""Which Airflow releases the package accepts: 3.1 and newer; on 3.0 importing it fails with a message that says
why (the matrix, tools/matrix.py, installs it on MWAA's 3.0.6 to see that message for real)."""

from __future__ import annotations

import importlib.metadata

import pytest

from birthday_pipeline.supported import require_supported_airflow, unsupported_reason


@pytest.mark.parametrize("version", ["3.0.0", "3.0.6", "2.11.0"])
def test_an_airflow_before_3_1_is_refused_naming_its_version_and_the_docs(version: str) -> None:
    reason = unsupported_reason(version)
    assert reason is not None
    assert f"has Airflow {version}" in reason
    assert "needs Apache Airflow 3.1 or newer" in reason
    assert "docs/deploy.md" in reason


@pytest.mark.parametrize("version", ["3.1.0", "3.1.7", "3.2.1", "3.3.2", "4.0.0", "3.2.0rc1"])
def test_airflow_3_1_and_newer_is_accepted(version: str) -> None:
    assert unsupported_reason(version) is None


def test_the_airflow_of_this_environment_is_accepted() -> None:
    assert unsupported_reason(importlib.metadata.version("apache-airflow-core")) is None
    require_supported_airflow()
