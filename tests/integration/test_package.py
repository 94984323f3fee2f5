"""The pipeline as a package a managed Airflow can take: a wheel that changes no locked version, and DAGs and
plugins that load with only ``dags/``, ``plugins/`` and that wheel, away from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.dags.test_dag_integrity import EXPECTED_DAG_IDS

PROJECT_DIR = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT_DIR / "include" / "sql"
CODE_DIR = PROJECT_DIR / "include" / "birthday_pipeline"
CHECKOUT_CODE = [str(PROJECT_DIR / name) for name in ("include", "dags", "plugins")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel` builds from the package's sources; the build must not warn (a missing package, ...).

    It builds from a copy of what docker/Dockerfile copies, so no build/ directory left in the checkout can
    slip stale files into the wheel.
    """
    sources, out = tmp_path_factory.mktemp("sources"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_DIR / name, sources / name)
    shutil.copytree(PROJECT_DIR / "include", sources / "include", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(sources)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "Warning" not in built.stdout + built.stderr, (built.stdout + built.stderr)[-3000:]
    [path] = out.glob("birthday_pipeline-*.whl")
    return path


def test_the_wheel_holds_the_code_and_every_sql_file_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sql_files = {f"birthday_pipeline/sql/{path.relative_to(SQL_DIR).as_posix()}" for path in SQL_DIR.rglob("*.sql")}
    modules = {f"birthday_pipeline/{path.relative_to(CODE_DIR).as_posix()}" for path in CODE_DIR.rglob("*.py")}
    assert sql_files and sql_files <= names, sorted(sql_files - names)
    assert modules <= names, sorted(modules - names)
    code = {name for name in names if ".dist-info/" not in name}
    assert code == sql_files | modules | {"birthday_pipeline/sql/__init__.py"}, sorted(code - sql_files - modules)


def test_installing_the_wheel_over_the_locked_airflow_changes_no_other_package(wheel: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--report", str(report), str(wheel)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    would_install = {item["metadata"]["name"]: item["metadata"]["version"]
                     for item in json.loads(report.read_text(encoding="utf-8"))["install"]}
    assert would_install == {"birthday-pipeline": "0.3.0"}, would_install
    requirements = [line.split(";")[0] for line in _metadata(wheel).splitlines() if line.startswith("Requires-Dist:")]
    assert requirements, "the wheel declares its dependencies"
    assert not [line for line in requirements if "==" in line or "apache-airflow " in f"{line} "], requirements
    assert not [line for line in requirements if line.split(">")[0].strip() in ("psycopg", "psycopg[binary]")]


# Runs away from the checkout, with the wheel's contents, dags/ and plugins/ copied out, and nothing else of
# ours on the path: every DAG parses and every module the tasks and the plugin import loads from the wheel.
LOAD_OUTSIDE = """
import importlib, importlib.util, json, pkgutil, sys
from pathlib import Path
root, *checkout = json.loads(sys.argv[1])  # the checkout, and its include/, dags/ and plugins/
assert not [entry for entry in sys.path
            if entry.rstrip("/") == root or any(entry.startswith(code) for code in checkout)], sys.path
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[2])
import birthday_pipeline
modules = [info.name for info in pkgutil.walk_packages(birthday_pipeline.__path__, "birthday_pipeline.")]
for name in modules:
    importlib.import_module(name)
spec = importlib.util.spec_from_file_location("birthdays_page", Path(sys.argv[3]) / "birthdays_page.py")
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
from birthday_pipeline.db.statements import load_sql
from birthday_pipeline.schema.files import pending_migrations
ours = [module.__file__ for module in list(sys.modules.values())
        if getattr(module, "__file__", None)
        and module.__name__.split(".")[0] in ("birthday_pipeline", "birthdays_page")]
print(json.dumps({
    "import_errors": {str(key): value for key, value in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "modules": modules,
    "from_checkout": [path for path in ours if any(path.startswith(code + "/") for code in checkout)],
    "sql": load_sql("plan/release_batches")[:2],
    "migrations": len(pending_migrations(set())),
    "plugin": plugin.BirthdaysPagePlugin.name,
}))
"""


def test_dags_and_plugins_load_with_only_the_wheel_away_from_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    shutil.copytree(PROJECT_DIR / "dags", tmp_path / "dags")
    shutil.copytree(PROJECT_DIR / "plugins", tmp_path / "plugins")
    environment = {
        **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        # The wheel's directory first: the checkout's editable install, if any, is only a fallback finder.
        "PYTHONPATH": str(site),
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(tmp_path / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_OUTSIDE, json.dumps([str(PROJECT_DIR), *CHECKOUT_CODE]), str(tmp_path / "dags"),
         str(tmp_path / "plugins")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, check=False, timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["import_errors"] == {}
    assert set(result["dag_ids"]) == EXPECTED_DAG_IDS
    assert {_module_name(path) for path in CODE_DIR.rglob("*.py") if path != CODE_DIR / "__init__.py"} | {
        "birthday_pipeline.sql"
    } == set(
        result["modules"]
    )
    assert result["from_checkout"] == []
    assert result["sql"] == "--"
    assert result["migrations"] == len(list((SQL_DIR / "migrations").glob("*.sql")))
    assert result["plugin"] == "birthdays_page"


def _module_name(path: Path) -> str:
    """The dotted name of the module (or, for an ``__init__.py``, the subpackage) at ``path`` under CODE_DIR."""
    parts = path.relative_to(CODE_DIR).with_suffix("").parts
    return ".".join(("birthday_pipeline", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return archive.read(name).decode("utf-8")


# psycopg (3) made unimportable, as on a platform whose postgres provider predates 7.0 and lacks its extra.
WITHOUT_PSYCOPG3 = """
import importlib, pkgutil, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith("psycopg."):
            raise ImportError(f"no {name} here")
sys.meta_path.insert(0, Refuse())
import birthday_pipeline
for info in pkgutil.walk_packages(birthday_pipeline.__path__, "birthday_pipeline."):
    importlib.import_module(info.name)
import psycopg2
from birthday_pipeline.db.connections import dict_cursor
with psycopg2.connect(sys.argv[1]) as conn, dict_cursor(conn) as cursor:
    cursor.execute("SELECT 1 AS one")
    print(cursor.fetchone()["one"], "psycopg" in sys.modules)
"""


def test_the_package_needs_no_psycopg3(app_database_url: str) -> None:
    """psycopg 3 is used where the platform has it; the wheel never asks for it (it would switch PostgresHook's
    driver for every DAG of the deployment)."""
    loaded = subprocess.run([sys.executable, "-c", WITHOUT_PSYCOPG3, app_database_url], capture_output=True,
                            text=True, check=False, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["1", "False"]
