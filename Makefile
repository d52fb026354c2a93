# maestro-plan: every target creates its own virtual environment (.venv); nothing is installed globally.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/demo

.PHONY: demo test bench clean lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## demo: plan the bundled fleet, models and workloads; write plan, manifests, routing and report to out/demo
demo: $(STAMP)
	$(BIN)/maestro-plan validate
	$(BIN)/maestro-plan solve --out $(OUT)

## test: lint, then the whole test suite (the command CI runs)
test: lint
	$(BIN)/python -m pytest

## lint: ruff over the whole tree (rules in pyproject.toml [tool.ruff])
lint: $(STAMP)
	$(BIN)/ruff check .

## bench: solver, estimator-accuracy and packing benchmarks; results in benchmarks/results/
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
