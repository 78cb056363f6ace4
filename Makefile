# keel developer tasks. `make test` is what CI runs (.ci/run): it builds the virtualenv,
# makes sure the PostgreSQL server binaries, Chromium and podman exist, lints, then runs the whole
# test suite.
#
# Every install comes from a lock in requirements/ (written by `make lock`, kept in git), so
# nothing is resolved on the user's machine and every install gets the versions CI tested:
#   requirements/runtime.lock  keel's runtime dependencies + scikit-learn: what `make demo` needs
#   requirements/dev.lock      every extra (test tools, dask, MLflow for bench): `make test`, `make bench`
# uv installs them (pip installs uv first, one wheel); without uv, pip installs the same lock.

PY ?= python3
# Set on the command line for a throwaway venv built the README's way: make install-runtime VENV=/tmp/v
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_LOCK := requirements/runtime.lock
DEV_LOCK := requirements/dev.lock
UV_VERSION := 0.13.9
# Every extra pyproject.toml declares (dev, bench, sklearn, dask, ...): what `make install` adds.
ALL_EXTRAS = $(shell $(PY) -c "import tomllib; print(','.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']))")
# One version per package for Linux (and any other platform) on Python 3.11 and later: the
# lowest supported Python decides, so the same pins install on 3.11 and 3.12+.
LOCK_FLAGS := --universal --python-version 3.11 --fork-strategy fewest \
  --annotation-style line --custom-compile-command 'make lock'
# Empty folders are not tracked by git: lint only the ones that exist in this checkout.
LINT_PATHS := $(wildcard src tests bench examples conformance)
comma := ,

.PHONY: install install-runtime lock test lint postgres-bins browser-bins container-bins demo bench bench-evidently-venv bench-bentoml-venv bench-mlflow-go-venv conformance-mlflow clean distclean

install: $(VENV)/.installed

install-runtime: $(VENV)/.installed-runtime

# A Debian python3 without python3-venv cannot create a venv (no ensurepip): as root, install
# python3-venv and retry.
define ensure-venv
@if [ ! -x $(BIN)/pip ]; then \
  echo "make: creating the virtualenv $(VENV) ($(PY) -m venv)"; \
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
endef

# uv installs a lock in seconds where pip takes minutes; if it cannot be had, pip does the
# same install from the same lock, only slower.
define ensure-uv
@if [ ! -x $(BIN)/uv ]; then \
  echo "make: installing the installer uv $(UV_VERSION) into $(VENV) (pip, one wheel)"; \
  $(BIN)/python -m pip install -q --disable-pip-version-check 'uv==$(UV_VERSION)' || \
    echo "make: could not install uv; pip will install from the same lock instead (slower)" >&2; \
fi
endef

# $(call install-lock,LOCK,EXTRAS,WHAT): the lock's pins plus keel itself (editable, with
# EXTRAS), in one resolution that takes every version from the lock.
define install-lock
@if [ -x $(BIN)/uv ]; then \
  echo "make: installing $(3) from $(1) (uv)"; \
  $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -r $(1) -e '.[$(2)]'; \
else \
  echo "make: installing $(3) from $(1) (pip: uv is missing)"; \
  $(BIN)/python -m pip install --disable-pip-version-check -r $(1) -e '.[$(2)]'; \
fi || { \
  echo "make: installing from $(1) failed; if pyproject.toml's dependencies changed, run 'make lock'" >&2; \
  exit 1; \
}
endef

# Byte-compiles keel's own sources (the libraries are compiled as they are installed: uv's
# --compile-bytecode, pip's default): where PYTHONDONTWRITEBYTECODE is set, nothing is cached
# at run time and every `keel` command would compile its imports again (seconds per command).
define compile-keel
@$(BIN)/python -m compileall -q src >/dev/null || true
endef

# What `make demo` needs. Reinstalls whenever pyproject.toml or the lock changes.
$(VENV)/.installed-runtime: pyproject.toml $(RUNTIME_LOCK)
	$(ensure-venv)
	$(ensure-uv)
	$(call install-lock,$(RUNTIME_LOCK),sklearn,keel and its runtime dependencies with scikit-learn)
	$(compile-keel)
	@touch $@

# Everything the tests and the benchmarks need, added into the same venv. dev.lock holds
# runtime.lock's versions, so this install also counts as the runtime one.
$(VENV)/.installed: pyproject.toml $(DEV_LOCK)
	$(ensure-venv)
	$(ensure-uv)
	$(call install-lock,$(DEV_LOCK),$(ALL_EXTRAS),keel with every extra (test tools$(comma) dask$(comma) MLflow))
	$(compile-keel)
	@touch $@ $(VENV)/.installed-runtime

# Resolves pyproject.toml once, here, into the locks every install uses (run it after changing
# dependencies; `make lock LOCK_ARGS=--upgrade` moves every pin to the newest release).
# runtime.lock is resolved inside dev.lock, so the demo gets the versions the tests ran with.
lock:
	$(ensure-venv)
	$(ensure-uv)
	@test -x $(BIN)/uv || { echo "make lock: needs uv (pip install uv into $(VENV))" >&2; exit 1; }
	@mkdir -p requirements
	@echo "make: resolving keel with every extra into $(DEV_LOCK) (uv pip compile)"
	$(BIN)/uv pip compile pyproject.toml --all-extras $(LOCK_FLAGS) -o $(DEV_LOCK) $(LOCK_ARGS) >/dev/null
	@echo "make: resolving keel's runtime dependencies + sklearn into $(RUNTIME_LOCK), within $(DEV_LOCK)"
	$(BIN)/uv pip compile pyproject.toml --extra sklearn -c $(DEV_LOCK) $(LOCK_FLAGS) \
	  -o $(RUNTIME_LOCK) $(LOCK_ARGS) >/dev/null

postgres-bins:
	scripts/ensure-postgres.sh

browser-bins:
	scripts/ensure-chromium.sh

container-bins:
	scripts/ensure-podman.sh

define run-lint
$(BIN)/ruff check $(LINT_PATHS)
$(BIN)/ruff format --check $(LINT_PATHS)
$(BIN)/lint-imports
endef

lint: install
	$(run-lint)

# Evidently's and BentoML's own venvs too: tests/benchmarks checks keel's drift tests against
# Evidently's, and that the serving benchmark's BentoML service answers.
test: install postgres-bins browser-bins container-bins bench-evidently-venv bench-bentoml-venv
	$(run-lint)
	$(BIN)/python -m pytest -q

# The first minute: a store in ./.keel with a tracked grid search and the iris example
# trained and registered (examples/demo.py, which does each once), served by `keel server`
# (a first admin's password is printed once). Needs only the runtime install.
demo: install-runtime
	@echo "make: filling the store ./.keel (examples/demo.py)"
	$(BIN)/python examples/demo.py
	@echo "make: serving ./.keel with keel server (Ctrl-C stops it)"
	$(BIN)/keel --store .keel server $(SERVER_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Evidently for the drift benchmark (python -m bench --only drift), in a venv of its own: it
# pins plotly<6 and needs pandas<3, keel needs plotly 7. The benchmark builds the same venv
# itself when it is missing; the marker holds the requirements it was built from.
EVIDENTLY_VENV := .venv-evidently
EVIDENTLY_REQUIREMENTS := bench/evidently-requirements.txt
bench-evidently-venv: $(EVIDENTLY_VENV)/.installed

$(EVIDENTLY_VENV)/.installed: $(EVIDENTLY_REQUIREMENTS)
	@echo "make: building $(EVIDENTLY_VENV) for the drift benchmark (pip install -r $(EVIDENTLY_REQUIREMENTS))"
	rm -rf $(EVIDENTLY_VENV)
	$(PY) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(EVIDENTLY_REQUIREMENTS)
	cp $(EVIDENTLY_REQUIREMENTS) $@

# BentoML for the serving benchmark, and MLflow's Go backend for the tracking-load benchmark,
# in venvs of their own for the same reason (the benchmarks build them too when missing).
BENTOML_VENV := .venv-bentoml
BENTOML_REQUIREMENTS := bench/bentoml-requirements.txt
bench-bentoml-venv: $(BENTOML_VENV)/.installed

$(BENTOML_VENV)/.installed: $(BENTOML_REQUIREMENTS)
	@echo "make: building $(BENTOML_VENV) for the serving benchmark (pip install -r $(BENTOML_REQUIREMENTS))"
	rm -rf $(BENTOML_VENV)
	$(PY) -m venv $(BENTOML_VENV)
	$(BENTOML_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(BENTOML_REQUIREMENTS)
	cp $(BENTOML_REQUIREMENTS) $@

MLFLOW_GO_VENV := .venv-mlflow-go
MLFLOW_GO_REQUIREMENTS := bench/mlflow-go-requirements.txt
bench-mlflow-go-venv: $(MLFLOW_GO_VENV)/.installed

$(MLFLOW_GO_VENV)/.installed: $(MLFLOW_GO_REQUIREMENTS)
	@echo "make: building $(MLFLOW_GO_VENV) for the tracking-load benchmark (pip install -r $(MLFLOW_GO_REQUIREMENTS))"
	rm -rf $(MLFLOW_GO_VENV)
	$(PY) -m venv $(MLFLOW_GO_VENV)
	$(MLFLOW_GO_VENV)/bin/python -m pip install -q --disable-pip-version-check -r $(MLFLOW_GO_REQUIREMENTS)
	cp $(MLFLOW_GO_REQUIREMENTS) $@

# MLflow's own server test files, unmodified, against keel server (conformance/mlflow/README.md):
#   make conformance-mlflow MLFLOW=~/src/mlflow [CONFORMANCE_ARGS='-k registered_model']
# In a venv of its own: MLflow's tests need pytest-asyncio, which keel's suite does not load.
CONFORMANCE_VENV := .venv-conformance
conformance-mlflow:
	@test -n "$(MLFLOW)" || { echo "make conformance-mlflow: give MLFLOW=<a checkout of mlflow/mlflow that holds tests/>" >&2; exit 2; }
	@$(MAKE) --no-print-directory install VENV=$(CONFORMANCE_VENV)
	@$(CONFORMANCE_VENV)/bin/uv pip install -q --python $(CONFORMANCE_VENV)/bin/python 'pytest-asyncio==1.5.0' 'pytest-timeout==2.4.0'
	$(CONFORMANCE_VENV)/bin/python conformance/mlflow/run.py $(MLFLOW) $(CONFORMANCE_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist test-output
	find src tests bench examples -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	find src -name '*.egg-info' -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf $(VENV) .venv-conformance .venv-evidently .venv-bentoml .venv-mlflow-go
