# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CHRONOX := $(BIN)/chronox
PYTEST_ARGS ?=

.PHONY: venv browser demo test unit lint stack-up stack-down bench chaos clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[sim,test]'
	touch $@

demo: venv
	$(CHRONOX) demo

# Test processes side by side (pytest-xdist): the integration tests mostly wait on Kafka,
# their workers and the simulator, so more processes than cores pay off (README "Development").
TEST_PROCESSES ?= 6
UNIT_PROCESSES ?= 2

# The live page's test drives Debian's chromium through Debian's chromedriver; as the stack
# does for its servers, they are installed with apt-get (as root) when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Brings the stack up, runs unit and integration tests, always brings the stack down.
test: venv browser
	@$(CHRONOX) stack up; \
	status=$$?; \
	if [ $$status -eq 0 ]; then \
		$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS); status=$$?; \
	fi; \
	$(CHRONOX) stack down; \
	exit $$status

# No services needed; budget: 30 s on 2 cores.
unit: venv
	$(BIN)/python -m pytest tests/unit -n $(UNIT_PROCESSES) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check chronox_stream agents tables tests
	$(BIN)/mypy chronox_stream

stack-up: venv
	$(CHRONOX) stack up

stack-down: venv
	$(CHRONOX) stack down

# Benchmarks print ratios to raw baselines measured in the same run (needs the stack up).
bench: venv
	$(CHRONOX) stack up
	$(BIN)/python bench/flatfile_parse.py
	$(BIN)/python bench/dedup_state_rss.py
	$(BIN)/python bench/backfill_bench.py
	$(BIN)/python bench/tick_fold.py
	$(BIN)/python bench/tick_bench.py
	$(BIN)/python bench/tick_bench.py --feed dense
	$(BIN)/python bench/tick_bench.py --feed session
	$(BIN)/python bench/tick_latency.py

# A backfill and a stream through SIGKILLs, a join, a leave and 30 s outages of a private
# PostgreSQL and Redis (Kafka is the stack's); CHAOS_ARGS shortens them, e.g.
# CHAOS_ARGS="--postgres-outage-s 10 --redis-outage-s 10". Exits non-zero if PostgreSQL is not exact.
CHAOS_ARGS ?=
chaos: venv
	$(CHRONOX) stack up
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .chronox
