# The whole set-up of a fresh clone is `make run` or `make test`; everything else is a step of them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help install kafka-jars console-assets test-tools run test test-unit lint format bench lock clean

help:
	@echo "make run    set up, start the local Kafka, create topics, run the pipeline with demo traffic"
	@echo "make test   set up, start a Kafka for the tests, run the whole suite, stop it"
	@echo "make lint   ruff, mypy and the import layering (lint-imports)"
	@echo "make bench  the pipeline against the raw-Kafka limit on a local broker (BENCH_ARGS=...)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Jars come from Maven Central into ~/.cache/dom, once per Kafka release; skipped when a cluster
# is given with DOM_KAFKA_BOOTSTRAP.
kafka-jars: install
ifndef DOM_KAFKA_BOOTSTRAP
	$(BIN)/dom kafka fetch
endif

# The console's charting library (uPlot, pinned in deploy/console/pom.xml), from Maven Central
# into the same cache, once per release.
console-assets: install
	$(BIN)/python -m dom.console.assets

run: kafka-jars console-assets
	$(BIN)/python -m dom.run

# The test session starts its own broker (free ports, data under var/test-kafka) and stops it
# at the end, unless DOM_KAFKA_BOOTSTRAP names a cluster. Most of a test's time is spent waiting
# (workers starting, the broker, quiet periods), so two test files run at once (pytest-xdist),
# each xdist worker with a broker of its own; a file's tests stay on one worker, in their order
# (some share a module's broker, registry or loaded pipeline), and the files go out in the
# order they are collected: the long end-to-end ones first, the quick unit tests fill the end.
# TEST_WORKERS=0 runs them one after another.
TEST_WORKERS ?= 2

test-tools:
	scripts/install-test-tools.sh

test: kafka-jars console-assets test-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# One run, one report: throughput, latency at half the maximum, memory, raw-Kafka ratio.
# BENCH_ARGS="--orders 500 --skus 1000" for a short run; it never fails on a number.
bench: kafka-jars
	$(BIN)/dom bench $(BENCH_ARGS)

test-unit: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dom schemas streams connectors config
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-pin every dependency from pyproject.toml into constraints.txt.
lock:
	rm -rf /tmp/dom-lock-venv
	$(PYTHON) -m venv /tmp/dom-lock-venv
	/tmp/dom-lock-venv/bin/pip install -q --upgrade pip
	/tmp/dom-lock-venv/bin/pip install -q -e '.[dev]'
	/tmp/dom-lock-venv/bin/pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf $(VENV) var
