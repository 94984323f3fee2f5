"""Airflow's DagBag, for the tests: ``airflow.dag_processing.dagbag`` from Airflow 3.2, ``airflow.models.dagbag``
on 3.1 (the platform matrix, tools/matrix.py, runs the tests on both)."""

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import DagBag

__all__ = ["DagBag"]
