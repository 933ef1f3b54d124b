# One command each: `make train` and `make test` install everything they need first.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test lint format bench bench-paths bench-scale bench-zoo bench-shipped bench-teams clean

install: $(STAMP)

# torch is pinned and installed first: 2.13.0 is the CPU build on this machine's disk, while an
# unpinned torch (or a range a newer release satisfies) would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

train: install
	$(VENV)/bin/marlnav train $(ARGS)

# Tests run on one torch thread each (tests/conftest.py), so one worker per core (pytest-xdist) about halves the
# suite's time on 2 cores; the tests that start Ray share one worker (conftest's xdist_group), one at a time.
test: install
	$(PY) -m pytest -q -n auto --dist loadgroup $(ARGS)

# ruff, configured in pyproject.toml: lint and format check (CI runs both); `make format` rewrites.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks print figures and write JSON under benchmarks/results/; they assert nothing.
bench: install
	$(PY) -m benchmarks.vs_tutorial $(ARGS)

bench-paths: install
	$(PY) -m benchmarks.hot_paths $(ARGS)

bench-scale: install
	$(PY) -m benchmarks.scale $(ARGS)

# Hours on 2 cores: every zoo entry over 3 seeds, beside random, VMAS's heuristic and --preset benchmarl.
bench-zoo: install
	$(PY) -m benchmarks.zoo $(ARGS)

bench-shipped: install
	$(PY) -m benchmarks.shipped $(ARGS)

# One policy trained across team sizes against the 3-agent policy, at 1 to 16 agents, over 5 seeds.
bench-teams: install
	$(PY) -m benchmarks.team_sizes $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
