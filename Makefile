# smspoint-dispatcher: everything a fresh machine needs is set up from here.
#   make test   - create .venv, install the project, install system test deps, run the whole suite
#   make demo   - run the whole system locally against the gateway simulator
#   make bench  - run the benchmarks (bench/)
#   make chaos  - the longer fault-injection soak
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench chaos lint typecheck audit venv system-deps lock clean

RUNTIME_STAMP := $(VENV)/.installed-runtime

# Everything (tests, lint, benchmarks): the project with its dev and bench extras.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,bench]'
	touch $(STAMP) $(RUNTIME_STAMP)

# What running the system needs (the demo): the project alone, no test or benchmark tools.
$(RUNTIME_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $(RUNTIME_STAMP)

venv: $(STAMP)

system-deps:
	bash .ci/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/ruff check dispatcher workers tests bench
	$(BIN)/mypy dispatcher workers bench
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check dispatcher workers tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy dispatcher workers bench

audit: $(STAMP)
	$(BIN)/pip-audit --strict -r requirements.lock --disable-pip --no-deps --progress-spinner off

demo: $(RUNTIME_STAMP)
	$(BIN)/smsdispatch demo

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(STAMP)
	SMSPOINT_CHAOS_SOAK=1 $(BIN)/pytest tests/chaos -v

lock:
	rm -rf /tmp/smspoint-lock && $(PYTHON) -m venv /tmp/smspoint-lock
	/tmp/smspoint-lock/bin/pip install --quiet --upgrade pip
	/tmp/smspoint-lock/bin/pip install --quiet '.[dev,bench]'
	/tmp/smspoint-lock/bin/pip freeze --exclude-editable | grep -v '^smspoint-dispatcher' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
