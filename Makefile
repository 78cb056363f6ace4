# keel developer tasks. `make test` is what CI runs (.ci/run): it builds the virtualenv,
# makes sure the PostgreSQL server binaries and Chromium exist, lints, then runs the whole
# test suite.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Empty folders are not tracked by git: lint only the ones that exist in this checkout.
LINT_PATHS := $(wildcard src tests bench examples)

.PHONY: install test lint postgres-bins browser-bins demo bench clean distclean

install: $(VENV)/.installed

# Reinstalls whenever pyproject.toml changes. A Debian python3 without python3-venv cannot
# create a venv (no ensurepip): as root, install python3-venv and retry.
$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(BIN)/pip ]; then \
	  rm -rf $(VENV); \
	  $(PY) -m venv $(VENV) || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "make: '$(PY) -m venv' failed; installing python3-venv"; \
	      rm -rf $(VENV); \
	      DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	      $(PY) -m venv $(VENV); \
	    else \
	      echo "make: '$(PY) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	      exit 1; \
	    fi; \
	  }; \
	fi
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

postgres-bins:
	scripts/ensure-postgres.sh

browser-bins:
	scripts/ensure-chromium.sh

define run-lint
$(BIN)/ruff check $(LINT_PATHS)
$(BIN)/ruff format --check $(LINT_PATHS)
$(BIN)/lint-imports
endef

lint: install
	$(run-lint)

test: install postgres-bins browser-bins
	$(run-lint)
	$(BIN)/python -m pytest -q

# The first minute: a store in ./.keel with a tracked grid search and the iris example
# trained and registered, served by `keel server` (a first admin's password is printed once).
demo: install
	$(BIN)/python examples/demo.py
	$(BIN)/keel --store .keel -c examples/iris/keel.yml train
	$(BIN)/keel --store .keel server $(SERVER_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist test-output
	find src tests bench examples -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	find src -name '*.egg-info' -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf $(VENV)
