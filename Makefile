# The two commands a newcomer needs: `make run` and `make test`. Only Python 3.11+ and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-matrix migrate bench bench-quick clean chromium compose-test

run: $(VENV)/.runtime
	$(BIN)/python -m tools.dev run $(if $(filter 0,$(DEMO)),--no-demo)

# Lint first (ruff, configured in pyproject.toml): a lint error fails the tests. The suite runs in
# TEST_WORKERS pytest-xdist processes (0: one process), a test file to a worker, each with databases, ports and
# an Airflow home of its own; most of its time is spent waiting for real send instants, so 4 workers on 2 cores
# take about 10 minutes instead of 25. Files are handed out longest first (the `long` marker, tests/conftest.py),
# in that order (--no-loadscope-reorder), so the slowest start at once and the tail is short (README, "Tests").
TEST_WORKERS ?= 4
test: $(VENV)/.test chromium
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The platform matrix (tools/matrix.py, docs/deploy.md "Supported versions"): the core tests on each supported
# Airflow, installed as its platform pins it, in virtualenvs kept under .local/matrix/ between runs.
test-matrix: $(VENV)/.test
	$(BIN)/python -m tools.matrix

# The Birthdays page test renders the page in Debian's headless chromium; install it where it is missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the Birthdays page test"; \
		$(SUDO) apt-get install -y chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }; }

# docker-compose.yaml run for real under podman, on stand-in images built here (docs/deploy.md, "The compose
# file, run here"): slow on 2 cores (14 minutes with nothing cached, 3.5 of them building; 9 to 11 once cached), so not
# part of `make test`. Needs root (debootstrap, rootful podman).
compose-test: $(VENV)/.runtime
	@command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
		echo "Installing Debian's podman, runc and debootstrap for the compose test"; \
		$(SUDO) apt-get install -y podman runc debootstrap || { $(SUDO) apt-get update && \
		$(SUDO) apt-get install -y podman runc debootstrap; }; }
	$(BIN)/python -m tools.compose_test

migrate: $(VENV)/.runtime
	$(BIN)/python -m tools.dev migrate

# Benchmarks (docs/performance.md): a table, benchmarks/results/latest.json and a last line RESULT ...
bench: $(VENV)/.runtime
	$(BIN)/python -m benchmarks.run

bench-quick: $(VENV)/.runtime
	$(BIN)/python -m benchmarks.run --quick

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The lock first, then the project itself as the package birthday_pipeline (editable, so edits under include/
# apply at once; --no-deps, so the lock's versions stay exactly as they are).
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

clean:
	rm -rf $(VENV) .local
