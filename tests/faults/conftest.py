"""Fixtures shared by the fault cases."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sweep_dag(app_database_url):
    """The ``birthday_sweep`` DAG, for real runs under ``dag.test()``."""
    from tests.airflow_dagbag import DagBag

    return DagBag().get_dag("birthday_sweep")
