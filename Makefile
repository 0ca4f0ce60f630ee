# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
# The project pins Python 3.11 (pyproject.toml): python3.11 when the machine has it under that name, else python3.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= data/demo
DEMO_START ?= 2025-03-01
DEMO_DAYS ?= 7
DEMO_EVENTS ?= 200000
DEMO_END ?= $(shell $(PYTHON) -c "import datetime as d;print(d.date.fromisoformat('$(DEMO_START)')+d.timedelta(days=max($(DEMO_DAYS)-4,0)))")
# Targets below are relative paths (make cannot name a file with blanks); recipes quote DATA_DIR, which
# may be absolute or hold blanks: `make run DATA_DIR="/data/eu demo"`.
INSTANCE := .dagster_home
export DAGSTER_HOME := $(CURDIR)/$(INSTANCE)

.PHONY: setup run test ui bench lint lock generate clean test-distributed

setup: $(STAMP)

# The lock file pins every package (direct and transitive); the venv gets exactly it. pip installs a pinned
# uv, which installs the lock file in about 30 s where pip alone takes over 2 minutes on a fresh machine
# (uv downloads in parallel). Should uv fail (not installable, or no route to its index), pip does it all.
UV_VERSION := 0.13.8
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
		echo "make: the project needs Python 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1). Name one: make $(MAKECMDGOALS) PYTHON=/path/to/python3.11" >&2; \
		exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "make: $(PYTHON) -m venv failed (on Debian and Ubuntu: apt install python3.11-venv)" >&2; exit 1; }
	{ $(BIN)/python -m pip install --quiet uv==$(UV_VERSION) && \
		$(UV_INSTALL) -r requirements.lock && $(UV_INSTALL) --no-deps -e .; } || { \
		echo "make: uv could not install the lock file; installing with pip instead (slower)" >&2 && \
		$(BIN)/python -m pip install --quiet --upgrade "pip>=24" && \
		$(BIN)/python -m pip install --quiet -r requirements.lock && \
		$(BIN)/python -m pip install --quiet --no-deps -e .; }
	mkdir -p $(INSTANCE) && touch $@

# Demo data once: a data directory that already has its reference tables is left as it is.
generate: $(STAMP)
	test -f "$(DATA_DIR)/reference/countries.csv" || $(BIN)/revwh generate --data-dir "$(DATA_DIR)" \
		--start $(DEMO_START) --days $(DEMO_DAYS) --events-per-day $(DEMO_EVENTS) --seed 7

# The instance settings of dagster.yaml (run queue, warehouse pool, slot clean-up) for `make run` and `make ui`.
$(INSTANCE)/dagster.yaml: dagster.yaml
	mkdir -p $(INSTANCE) && cp dagster.yaml $@

run: $(STAMP) $(INSTANCE)/dagster.yaml generate
	$(BIN)/revwh run --data-dir "$(DATA_DIR)" --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/revwh sql "SELECT * FROM marts.revenue_by_stream ORDER BY event_date, stream" --data-dir "$(DATA_DIR)"

# Two pytest workers (pytest-xdist), one test module each at a time so module fixtures are built once:
# most tests run a Dagster pipeline whose per-step overhead is single-threaded. `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not distributed" -n $(TEST_WORKERS) --dist loadfile tests

# Redis + two Celery workers on loopback, one run through them, marts compared with an in-process run.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-distributed: $(STAMP)
	command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	$(BIN)/python -m pytest -q -s -m distributed tests/distributed

# Throughput, stage times, peak RSS and validation share (pipelines/bench/); writes bench-results.json.
# `make bench BENCH_MODE=incremental` (7 vs 90 days of history, BENCH_REPEATS runs each), `make bench BENCH_DAYS=1 BENCH_EVENTS=30000000`
# (peak RSS of one large day), BENCH_ARGS for more (`--keep`, `--reuse`, `--data-root DIR`, `--ruled`: the rules as one statement).
BENCH_EVENTS ?= 3000000
BENCH_DAYS ?= 5
BENCH_MODE ?= full
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m pipelines.bench --mode $(BENCH_MODE) --days $(BENCH_DAYS) --events-per-day $(BENCH_EVENTS) \
		$(BENCH_ARGS)

# Re-pin every dependency after editing pyproject.toml (uv's resolver, installed in the venv on first use);
# commit pyproject.toml and requirements.lock together.
lock: $(STAMP)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -p 3.11 -o requirements.lock

lint: $(STAMP)
	$(BIN)/ruff check pipelines tests
	$(BIN)/ruff format --check pipelines tests

# Started inside the instance folder: `dagster dev` warns about any dagster.yaml in its working folder that is
# not the instance's, and the repository's own is only the source of the copy in $(INSTANCE).
ui: $(STAMP) $(INSTANCE)/dagster.yaml generate
	data="$$(realpath -m -- "$(DATA_DIR)")" && cd $(INSTANCE) && REVWH_DATA_DIR="$$data" ../$(BIN)/dagster dev -w ../workspace.yaml

clean:
	rm -rf $(VENV) .dagster_home data/demo data/bench
