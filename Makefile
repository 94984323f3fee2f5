# The two commands a newcomer needs: `make run` and `make test`. Only Python 3.11+ and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test migrate bench bench-quick clean

run: $(VENV)/.runtime
	$(BIN)/python -m tools.dev run $(if $(filter 0,$(DEMO)),--no-demo)

test: $(VENV)/.test
	$(BIN)/python -m pytest

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

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

clean:
	rm -rf $(VENV) .local
