# The README's two commands: `make demo` and `make test`. Both set up .venv on a fresh
# machine. torch is pinned first to the CPU wheel (an unpinned torch pulls a CUDA build).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -m "not slow"

.PHONY: install demo test test-all mutants lint clean-demo bench-quick eval wheel-check citus

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps aisfx==0.1.2  # its pins (numpy<2) would break the rest
	touch $(STAMP)

install: $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Citus for the embedded PostgreSQL, from the vendored source (MMSEARCH_CITUS_SOURCE, default
# vendor/citus-14.0.1.tar.gz): built once into a cache outside the venv
# (MMSEARCH_CITUS_CACHE, default ~/.cache/mmsearch/citus), then installed from it. The
# `citus`-marked tests need it: they skip without it, and fail without it under CI=1.
citus: install
	$(PY) -m mmsearch.cluster.build

demo: install
	$(PY) -m examples.demo

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

test-all: PYTEST_ARGS =
test-all: test

# One deliberate bug at a time (tools/mutations.py) in a scratch copy, and the tests that must
# catch it; fails unless every mutation is caught. MUTANTS_ARGS="--only ID --jobs 2" etc.
MUTANTS_ARGS ?=
mutants: install
	HF_HUB_OFFLINE=1 $(PY) tools/mutants.py $(MUTANTS_ARGS)

# The quick variants of the benchmarks and the evaluation (CI runs them after the tests);
# the full ones are documented in docs/benchmarks.md with their commands.
bench-quick: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m bench.search --quick --no-plots
	HF_HUB_OFFLINE=1 $(PY) -m bench.ingest --quick
	HF_HUB_OFFLINE=1 $(PY) -m bench.eval --quick --out bench/out/eval-quick.json

eval: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m bench.eval --out bench/out/eval.json

# Build the wheel and use it from a fresh virtualenv outside the checkout (CI runs this).
wheel-check:
	tools/wheel_check.sh

lint: install
	$(VENV)/bin/ruff check mmsearch tests bench examples tools
	$(VENV)/bin/ruff format --check mmsearch tests bench examples tools
