# The two commands: `make run` (whole product, embedded default) and `make test` (whole suite, real PG + Redis).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-fast bench otp otp-watch lint chaos security install clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) scripts/run.py

test: install
	$(PY) scripts/with_services.py -- $(PY) -m pytest $(PYTEST_ARGS)

# Without the browser and the slow chaos tests.
test-fast: install
	$(PY) scripts/with_services.py -- $(PY) -m pytest -m "not e2e and not chaos" $(PYTEST_ARGS)

chaos: install
	$(PY) scripts/with_services.py -- $(PY) -m pytest -m chaos $(PYTEST_ARGS)

security: install
	$(PY) scripts/with_services.py -- $(PY) -m pytest -m security $(PYTEST_ARGS)

bench: install
	$(PY) scripts/with_services.py -- $(PY) -m benchmarks $(BENCH_ARGS)

otp: install
	@$(PY) manage.py demo_otp

otp-watch: install
	@$(PY) manage.py demo_otp --watch

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .pytest_cache
