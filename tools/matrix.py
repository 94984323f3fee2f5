"""The platform matrix (`make test-matrix`; CI runs it after `make test`): the core tests on every Airflow the
package supports, each installed as its platform pins it.

For each set of SETS, a virtualenv under ``.local/matrix/venvs/`` gets that Airflow and its postgres, http and
standard providers under the set's constraints file (``tools/constraints/``), then the project's wheel under the
same constraints, so a requirement of the wheel that the platform's pins do not meet fails the install, as it
would on the platform. Then ``pytest -m core`` runs with that virtualenv's Python from the checkout: the tests
come from ``tests/``, the code they test from the installed wheel (the checkout's ``include/`` is on no path of
that Python, and the check below proves the import). A virtualenv is reused while its constraints file and
``pyproject.toml`` are unchanged; the wheel itself is reinstalled on every run.

The lowest set's constraints are what uv resolves with ``--resolution lowest-direct`` for Airflow 3.1.7 and the
package's own dependency ranges: each of them at its lower bound. The refused set (MWAA's Airflow 3.0) checks
that installing the wheel fails at once under the platform's constraints and that, forced in anyway, importing
the package says why.

One embedded PostgreSQL (tools/local_postgres.py, under ``.local/matrix/postgres``) serves every set, each with
its own Airflow metadata database. Prints a table, writes ``.local/matrix/results.json``, and exits 1 if any set
did not do what it should.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from tools import local_postgres

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONSTRAINTS_DIR = PROJECT_DIR / "tools" / "constraints"
MATRIX_DIR = local_postgres.LOCAL_DIR / "matrix"
VENVS_DIR = MATRIX_DIR / "venvs"
RESULTS_FILE = MATRIX_DIR / "results.json"
PROVIDERS = ("apache-airflow-providers-postgres", "apache-airflow-providers-http", "apache-airflow-providers-standard")
# pytest is pinned by some platforms' constraints (MWAA 3.0.6); where it is not, pip takes the newest.
TEST_TOOLS = ("pytest",)
# The versions the table reports for each set.
REPORTED = ("apache-airflow-core", *PROVIDERS, "psycopg2-binary", "psycopg")
# uv, only to resolve the lowest set (pip has no lowest resolution).
UV = "uv==0.13.8"
INSTALL_TIMEOUT = 1800
TEST_TIMEOUT = 1800


@dataclasses.dataclass(frozen=True)
class MatrixSet:
    """One platform's Airflow: its version, the constraints it installs under, and what the matrix expects."""

    name: str
    airflow: str  # an exact version, or a specifier for the lowest set
    constraints: str | None  # a file under tools/constraints/; None: resolved with uv, lowest-direct
    platform: str
    refused: bool = False  # the package must refuse this Airflow: the install fails, the import says why


SETS = (
    MatrixSet("mwaa-3.0.6", "3.0.6", "mwaa-3.0.6.txt", "Amazon MWAA 3.0.6 (refused)", refused=True),
    # The newest 3.1: Airflow 3.1.0 does not start with today's structlog (ImportError: cannot import name
    # 'Styles' from 'structlog.dev'), and only Airflow and the package's ranges are resolved low here.
    MatrixSet("lowest", "==3.1.7", None, "the package's lowest ranges on Airflow 3.1.7 (uv lowest-direct)"),
    MatrixSet("airflow-3.1.7", "3.1.7", "airflow-3.1.7.txt", "Airflow 3.1.7 as pip resolves it (Cloud Composer 3)"),
    MatrixSet("mwaa-3.2.1", "3.2.1", "mwaa-3.2.1.txt", "Amazon MWAA 3.2.1 (psycopg2 only)"),
    MatrixSet("mwaa-3.3.1", "3.3.1", "mwaa-3.3.1.txt", "Amazon MWAA 3.3.1 (psycopg 3)"),
)


@dataclasses.dataclass
class SetResult:
    name: str
    platform: str
    outcome: str = "failed"  # passed | refused as expected | failed
    install: str = ""  # built | cached | refused | failed
    install_seconds: float = 0.0
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    driver: str = ""
    tests: dict[str, int] = dataclasses.field(default_factory=dict)
    test_seconds: float = 0.0
    detail: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", dest="sets", choices=[entry.name for entry in SETS],
                        help="run only this set (repeatable); all of them by default")
    arguments = parser.parse_args()
    chosen = [entry for entry in SETS if not arguments.sets or entry.name in arguments.sets]
    MATRIX_DIR.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel()
    server = local_postgres.server_url(MATRIX_DIR / "postgres")
    results = [run_set(entry, wheel, server) for entry in chosen]
    RESULTS_FILE.write_text(json.dumps([dataclasses.asdict(result) for result in results], indent=2) + "\n",
                            encoding="utf-8")
    print_table(results)
    print(f"written to {RESULTS_FILE.relative_to(PROJECT_DIR)}")
    return 0 if all(result.outcome in ("passed", "refused as expected") for result in results) else 1


def build_wheel() -> Path:
    """The project's wheel, built afresh from the checkout into .local/matrix/wheel/."""
    out = MATRIX_DIR / "wheel"
    shutil.rmtree(out, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(PROJECT_DIR)])
    [wheel] = out.glob("birthday_pipeline-*.whl")
    return wheel


def run_set(entry: MatrixSet, wheel: Path, server: str) -> SetResult:
    result = SetResult(entry.name, entry.platform)
    print(f"== {entry.name}: {entry.platform}", flush=True)
    started = time.monotonic()
    try:
        constraints = constraints_file(entry)
        venv, cached = virtualenv(entry, constraints)
        result.install = "cached" if cached else "built"
        installed = install_wheel(venv, wheel, constraints, first=not cached or entry.refused)
        result.install_seconds = round(time.monotonic() - started, 1)
        if entry.refused:
            return check_refused(entry, venv, wheel, installed, result)
        if installed.returncode != 0:
            result.install, result.detail = "failed", tail(installed)
            return result
        result.versions = installed_versions(venv)
        result.driver = "psycopg 3" if result.versions.get("psycopg") else "psycopg2 only"
        return run_core_tests(entry, venv, server, result)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        result.install_seconds = round(time.monotonic() - started, 1)
        result.detail = f"{error}: {tail(error)}"
        return result


def constraints_file(entry: MatrixSet) -> Path:
    """The set's constraints: its file under tools/constraints/, or for the lowest set what uv resolves with the
    lowest direct versions (kept under .local/matrix/constraints/ while pyproject.toml is unchanged)."""
    if entry.constraints is not None:
        return CONSTRAINTS_DIR / entry.constraints
    pyproject = (PROJECT_DIR / "pyproject.toml").read_bytes()
    resolved = MATRIX_DIR / "constraints" / f"{entry.name}-{digest(pyproject, entry.airflow.encode())}.txt"
    if resolved.exists():
        return resolved
    resolved.parent.mkdir(parents=True, exist_ok=True)
    uv = MATRIX_DIR / "uv"
    if not (uv / "bin" / "uv").exists():
        run([sys.executable, "-m", "venv", "--clear", str(uv)])
        run([str(uv / "bin" / "python"), "-m", "pip", "install", "--quiet", UV])
    requirements = resolved.with_suffix(".in")
    dependencies = tomllib.loads(pyproject.decode("utf-8"))["project"]["dependencies"]
    # Only Airflow and the package's own ranges are direct, so only they go to their lowest; the rest of Airflow's
    # dependencies resolve to their newest, and the test tools (not constrained here) install at their newest.
    requirements.write_text("\n".join([f"apache-airflow[postgres,http]{entry.airflow}", *dependencies]) + "\n",
                            encoding="utf-8")
    run([str(uv / "bin" / "uv"), "pip", "compile", "--quiet", "--resolution", "lowest-direct", "--python-version",
         f"{sys.version_info.major}.{sys.version_info.minor}", "--no-header", "--output-file", str(resolved),
         str(requirements)], timeout=INSTALL_TIMEOUT)
    return resolved


def virtualenv(entry: MatrixSet, constraints: Path) -> tuple[Path, bool]:
    """The set's virtualenv with Airflow, the providers and the test tools installed under ``constraints``;
    whether it was there already (keyed by the constraints file and pyproject.toml)."""
    key = digest(constraints.read_bytes(), (PROJECT_DIR / "pyproject.toml").read_bytes())
    venv = VENVS_DIR / f"{entry.name}-{key}"
    if (venv / ".installed").exists():
        return venv, True
    for stale in VENVS_DIR.glob(f"{entry.name}-*"):
        shutil.rmtree(stale)
    run([sys.executable, "-m", "venv", str(venv)])
    airflow = entry.airflow if entry.constraints is None else f"=={entry.airflow}"
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"apache-airflow[postgres,http]{airflow}",
         *PROVIDERS, *TEST_TOOLS, "--constraint", str(constraints)], timeout=INSTALL_TIMEOUT)
    (venv / ".installed").touch()
    return venv, False


def install_wheel(venv: Path, wheel: Path, constraints: Path, *, first: bool) -> subprocess.CompletedProcess[str]:
    """The wheel under the set's constraints. The first time its dependencies are resolved against the platform's
    pins; later (same pyproject.toml, so the same dependencies) only the code is replaced."""
    how = ["--constraint", str(constraints)] if first else ["--no-deps", "--force-reinstall"]
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *how, str(wheel)],
                          capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT, env=clean_environment())


def check_refused(entry: MatrixSet, venv: Path, wheel: Path, installed: subprocess.CompletedProcess[str],
                  result: SetResult) -> SetResult:
    """A refused Airflow: the wheel's install under the platform's constraints must fail, and the package, forced
    in without its dependencies, must refuse to import with the message that says why."""
    result.versions = installed_versions(venv)
    if installed.returncode == 0:
        result.install, result.detail = "failed", "the wheel installed on an Airflow the package refuses"
        return result
    result.install = "refused"
    conflict = [line.strip() for line in installed.stderr.splitlines() if "birthday-pipeline" in line]
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
         str(wheel)])
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import birthday_pipeline"], cwd=MATRIX_DIR,
                              capture_output=True, text=True, check=False, timeout=300, env=clean_environment())
    message = (imported.stderr.strip().splitlines() or [""])[-1]
    run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--quiet", "--yes", "birthday-pipeline"])
    expected = f"has Airflow {entry.airflow}"
    if imported.returncode != 0 and "UnsupportedAirflowError" in message and expected in message:
        result.outcome = "refused as expected"
    result.detail = f"pip: {' | '.join(conflict[:3])}; import: {message}"
    return result


def run_core_tests(entry: MatrixSet, venv: Path, server: str, result: SetResult) -> SetResult:
    python = str(venv / "bin" / "python")
    environment = {
        **clean_environment(),
        local_postgres.SERVER_URL_ENV: server,
        "BIRTHDAY_TEST_AIRFLOW_DATABASE": f"airflow_matrix_{entry.name.replace('-', '_').replace('.', '_')}",
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # From the checkout, as pytest runs: the package must come from the virtualenv's site-packages.
    where = subprocess.run([python, "-c", "import birthday_pipeline; print(birthday_pipeline.__file__)"],
                           cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, check=False, timeout=300)
    if where.returncode != 0 or not where.stdout.strip().startswith(str(venv)):
        result.detail = f"birthday_pipeline does not import from the wheel: {where.stdout.strip()} {tail(where)}"
        return result
    report = MATRIX_DIR / f"{entry.name}.xml"
    started = time.monotonic()
    log = MATRIX_DIR / f"{entry.name}.log"
    with log.open("w", encoding="utf-8") as output:
        tested = subprocess.run([python, "-m", "pytest", "-m", "core", "-p", "no:cacheprovider", "-v",
                                 f"--junitxml={report}", *core_modules()], cwd=PROJECT_DIR, env=environment,
                                stdout=output, stderr=subprocess.STDOUT, text=True, check=False, timeout=TEST_TIMEOUT)
    result.test_seconds = round(time.monotonic() - started, 1)
    result.tests = outcome_counts(report)
    passed = tested.returncode == 0 and result.tests.get("passed", 0) > 0
    result.outcome = "passed" if passed else "failed"
    if not passed:
        result.detail = f"see .local/matrix/{entry.name}.log: {tail_of(log)}"
    return result


def core_modules() -> list[str]:
    """The test modules with core tests. Only they are collected: the others import test tools (hypothesis,
    aiosmtpd) and drivers that a platform's set need not have."""
    return sorted(str(path.relative_to(PROJECT_DIR)) for path in (PROJECT_DIR / "tests").rglob("test_*.py")
                  if "pytest.mark.core" in path.read_text(encoding="utf-8"))


def outcome_counts(report: Path) -> dict[str, int]:
    if not report.exists():
        return {}
    suite = ElementTree.parse(report).getroot()  # noqa: S314 - the report our own pytest run just wrote
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {name: int(suite.get(name, "0")) for name in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def installed_versions(venv: Path) -> dict[str, str]:
    listed = run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"])
    versions = {item["name"].lower(): item["version"] for item in json.loads(listed.stdout)}
    return {name: versions[name] for name in REPORTED if name in versions}


def clean_environment() -> dict[str, str]:
    """This process's environment without what would point a set's Python at the project's own .venv."""
    return {name: value for name, value in os.environ.items()
            if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not name.startswith("AIRFLOW")}


def run(command: list[str], timeout: float = INSTALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout,
                          env=clean_environment())


def digest(*parts: bytes) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(hashlib.sha256(part).digest())
    return hashed.hexdigest()[:12]


def tail(completed: object, lines: int = 6) -> str:
    text = f"{getattr(completed, 'stdout', '') or ''}\n{getattr(completed, 'stderr', '') or ''}"
    kept = [line for line in text.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    return " | ".join(kept[-lines:])


def tail_of(log: Path, lines: int = 6) -> str:
    return " | ".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def print_table(results: list[SetResult]) -> None:
    header = ("set", "outcome", "install", "s", "airflow", "postgres", "http", "standard", "driver", "tests", "s")
    rows = [header]
    for result in results:
        counts = result.tests
        tests = (f"{counts.get('passed', 0)}/{counts.get('tests', 0)} passed"
                 + (f", {counts['failures'] + counts['errors']} failed" if counts.get("failures") or counts.get(
                     "errors") else "") if counts else "-")
        rows.append((result.name, result.outcome, result.install, f"{result.install_seconds:.0f}",
                     result.versions.get("apache-airflow-core", "-"),
                     *(result.versions.get(name, "-") for name in PROVIDERS), result.driver or "-", tests,
                     f"{result.test_seconds:.0f}"))
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    for result in results:
        if result.detail:
            print(f"{result.name}: {result.detail}")


if __name__ == "__main__":
    sys.exit(main())
