"""An auth manager for tests: Airflow's simple auth manager, except that it hides DAGs from some users.

Real deployments decide per DAG (FAB roles, Keycloak, a team's auth manager); the simple auth manager
lets every role read every DAG. ``BIRTHDAY_TEST_HIDDEN_DAGS`` (JSON, user name -> DAG ids) names the DAGs
each user may not read; everything else is the simple auth manager's decision.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

HIDDEN_DAGS_ENV = "BIRTHDAY_TEST_HIDDEN_DAGS"


class DagHidingAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        hidden = json.loads(os.environ.get(HIDDEN_DAGS_ENV, "{}")).get(user.get_name(), [])
        if details is not None and details.id in hidden:
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
