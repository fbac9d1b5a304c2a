# metamix — `make demo` and `make test` work on a fresh machine (they run `make setup` first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/demo.yaml
TORCH_VERSION ?= 2.13.0
# The install stamp changes with pyproject.toml, so `make setup` reinstalls only when needed.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
BENCH_STAMP := $(VENV)/.bench-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup setup-bench demo score select metarater mix export test lint bench corpus train-rater clean

setup: $(STAMP)

# PYTHONWARNINGS: the editable build's note ("Editable installation... be careful with
# folders named like the package") is setuptools' information, not a problem to act on.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull gigabytes of CUDA packages.
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $@

setup-bench: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]"
	@rm -f $(VENV)/.bench-*; touch $@

# Targets chain like files: each runs the steps it needs (`metamix run --until STEP` reads
# them from the config: select needs metarater/mix when it reads their outputs), and a step
# whose outputs are complete resumes in seconds.
# The whole chain on the bundled corpus: score → Meta-rater weights → mixture → select,
# then one HTML page of figures over it all; the last line printed is the page's path.
demo: setup
	$(VENV)/bin/metamix run --config $(CONFIG)
	$(VENV)/bin/metamix report --config $(CONFIG)

score metarater mix select: setup
	$(VENV)/bin/metamix run --config $(CONFIG) --until $@

# The selection as training data (FORMAT=jsonl|parquet|megatron) in out/<run>/export/<format>.
FORMAT ?= megatron
export: select
	$(VENV)/bin/metamix export --config $(CONFIG) --format $(FORMAT)

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check metamix pipeline scorers mixtures tests bench

bench: setup-bench
	$(PY) bench/run_all.py

train-rater: setup
	$(PY) bench/annotation/merge_seed.py --require-complete
	$(VENV)/bin/metamix train-rater --config $(CONFIG)

# Rebuild the bundled sample corpus from Debian packages (needs root for apt-get).
corpus: setup
	bash bench/corpus/install_sources.sh
	$(PY) bench/corpus/build_sample.py --out data/sample

clean:
	rm -rf out
