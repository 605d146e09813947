# etcdref — the two commands a fresh machine needs: `make run` and `make test`.
# Both bootstrap .venv from the pinned requirements.txt when it is missing or stale.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := spec models impl conformance benchmarks tools
PROTO_FILES := $(shell find etcdpb -name '*.proto' 2>/dev/null)

.PHONY: run test test-deep lint typecheck imports unit proto proto-check explore-large bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# A local three-member etcdref cluster on loopback; prints etcdctl lines to try; Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/etcdref cluster

test: $(STAMP) lint unit

lint: $(STAMP) imports typecheck
	$(BIN)/ruff check $(PACKAGES) tests

imports: $(STAMP)
	$(BIN)/python tools/check_import_direction.py

typecheck: $(STAMP)
	$(BIN)/mypy --strict spec models impl conformance etcdpb benchmarks tools

# pytest exits 5 when it collected nothing; that is not a failure of the project.
unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

# Deeper runs: more Hypothesis examples, bigger exploration, longer fault runs.
test-deep: $(STAMP)
	ETCDREF_DEEP=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Regenerate Python code (and mypy stubs) from etcdpb/**/*.proto; generated files are committed.
proto: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I . --python_out=. --mypy_out=. \
		--grpc_python_out=. --mypy_grpc_out=. $(PROTO_FILES)

explore-large: $(STAMP)
	$(BIN)/etcdref explore --profile large

bench: $(STAMP)
	$(BIN)/etcdref bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
