# interlock: every target creates the virtual environment it needs, so a fresh clone works.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo traces test e2e-clients lint format typecheck contracts diagrams diagrams-check check bench mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the proxy in sandbox mode, driven by the anthropic SDK, with timelines
	$(PY) -m adapters.demo

traces: $(STAMP)  ## regenerate the trace corpus tests/traces/ from tests/traces/corpus.py
	$(PY) -m tests.traces.corpus

test: $(STAMP)  ## run the test suite (the README's test command)
	$(PY) -m pytest

e2e-clients: $(STAMP)  ## real Claude Code + TypeScript SDK against the sandbox (not in make test)
	$(PY) -m tests.e2e_clients.clients install
	$(PY) -m pytest -m e2e_clients tests/e2e_clients -o addopts="" -v -p no:cacheprovider

lint: $(STAMP)  ## formatting and lint
	$(PY) -m ruff format --check engine adapters tests bench
	$(PY) -m ruff check engine adapters tests bench

format: $(STAMP)
	$(PY) -m ruff format engine adapters tests bench
	$(PY) -m ruff check --fix engine adapters tests bench

typecheck: $(STAMP)  ## mypy --strict on the engine and the adapters
	$(PY) -m mypy --strict engine adapters

contracts: $(STAMP)  ## import contracts: the engine never imports adapters, aiohttp, sockets
	$(VENV)/bin/lint-imports

diagrams: $(STAMP)  ## regenerate diagrams/ from the transition table
	$(PY) -m adapters.cli diagram --out diagrams

diagrams-check: $(STAMP)  ## fail when diagrams/ is stale
	$(PY) -m adapters.cli diagram --out diagrams --check

check: lint typecheck contracts diagrams-check test  ## everything CI runs

bench: $(STAMP)  ## benchmarks (not part of make test)
	$(PY) bench/engine_bench.py
	$(PY) bench/proxy_bench.py
	$(PY) bench/trace_bench.py
	$(PY) bench/operate_bench.py
	$(PY) bench/hotpath_bench.py
	$(PY) bench/frame_bench.py
	$(PY) bench/share_bench.py
	$(PY) bench/workers_bench.py
	$(PY) bench/scoreboard.py

mutants: $(STAMP)  ## planted engine bugs the tests must catch (tests/mutants/; not in make test)
	$(PY) -m tests.mutants.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
