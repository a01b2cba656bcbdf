# spanguard: `make demo` and `make test` work from a fresh clone on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PHOENIX_VENV := .venv-phoenix

.PHONY: demo test bench lint docs clean phoenix

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Arize Phoenix (the real observability backend of the end-to-end tests) needs its own venv: its dependencies
# pin an older anthropic SDK and bring OpenInference's instrumentors, which would change what the tests measure.
$(PHOENIX_VENV)/.installed:
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install --quiet arize-phoenix
	touch $@

phoenix: $(PHOENIX_VENV)/.installed

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py

test: lint phoenix
	$(BIN)/python -m spanguard.semconv - | diff -u docs/attributes.md - || (echo "docs/attributes.md is stale: run $(BIN)/python -m spanguard.semconv" && exit 1)
	$(BIN)/python -m spanguard.collector.reference --check docs/collector-config.md
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python bench/instrumentation_overhead.py
	$(BIN)/python bench/redaction.py
	$(BIN)/python bench/redaction_leaks.py
	$(BIN)/python bench/collector_throughput.py
	$(BIN)/python bench/review.py
	$(BIN)/python bench/gates_sim.py
	$(BIN)/python bench/dataset_export.py
	$(BIN)/python bench/gate_overhead.py

docs: $(STAMP)
	$(BIN)/python -m spanguard.semconv docs/attributes.md
	$(BIN)/python -m spanguard.collector.reference docs/collector-config.md

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) bench/.venvs .pytest_cache .ruff_cache .spanguard .typecheck
