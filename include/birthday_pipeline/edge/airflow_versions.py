"""What differs between the Airflow releases the package supports (3.1 and later), in one place: each function
answers the same on every one of them (docs/deploy.md, "Supported versions")."""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotation below when the app is built,
# and a string would name `security`, a local it cannot see.
import inspect
from collections.abc import Callable
from typing import Any


def task_exception(name: str) -> type[Exception]:
    """Airflow's exception class ``name`` as tasks raise and catch it (``AirflowFailException``, which fails a task
    without retries; ``AirflowNotFoundException``, a missing connection).

    Airflow 3.1 has them only in ``airflow.exceptions``; 3.2 moved them to ``airflow.sdk.exceptions`` and made the
    old names deprecated aliases (a warning in every task log), so the new module is used where it has them.
    """
    from airflow.sdk import exceptions as sdk_exceptions

    found = getattr(sdk_exceptions, name, None)
    if found is None:  # Airflow 3.1
        from airflow import exceptions

        found = getattr(exceptions, name)
    return found


def airflow_conf() -> Any:
    """Airflow's configuration as a task reads it: ``airflow.sdk.configuration.conf`` from Airflow 3.2, the core's
    ``airflow.configuration.conf`` on 3.1, which has no SDK configuration module."""
    try:
        from airflow.sdk.configuration import conf
    except ModuleNotFoundError:  # Airflow 3.1
        from airflow.configuration import conf
    return conf


def dag_read_access(dag_id: str) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only if the auth manager grants its user read access to
    the DAG ``dag_id``, as Airflow's own API checks it (401 without a login, 403 without the access).

    ``requires_access_dag`` takes the DAG's id as ``param_dag_id`` from Airflow 3.2; on 3.1 it reads the id only
    from the route's path, which the page's routes do not carry, so there the same check is made from the same
    parts with the id given.
    """
    from airflow.api_fastapi.core_api import security

    if "param_dag_id" in inspect.signature(security.requires_access_dag).parameters:
        return security.requires_access_dag("GET", param_dag_id=dag_id)

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from fastapi import Request

    # The same parameters as requires_access_dag's dependency: the page also calls it itself.
    def can_read_the_dag(request: Request, user: security.GetUserDep) -> None:
        security._requires_access(  # Airflow 3.1's own check behind requires_access_dag
            is_authorized_callback=lambda: get_auth_manager().is_authorized_dag(
                method="GET", details=DagDetails(id=dag_id), user=user
            )
        )

    return can_read_the_dag
