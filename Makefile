# The two entry points of the README: `make demo` (the main job) and `make test`.
# Each creates or refreshes .venv itself. torch is pinned to the CPU build that lies
# on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: venv demo test lint fashion-mnist clean

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

# Installs the Debian package of Fashion-MNIST where that is possible (root on
# Debian), so the real-data integration test runs; elsewhere it is skipped.
fashion-mnist:
	@if [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
		|| echo "note: could not install dataset-fashion-mnist; its test will be skipped"; \
	fi

# The demo study (studies/demo.toml, embedded data only) into results/demo, then its report.
# A second `make demo` finds every cell stored and only rebuilds the report.
demo: venv
	$(PY) -m losslab.cli run studies/demo.toml --out results/demo
	$(PY) -m losslab.cli report results/demo

test: venv fashion-mnist
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: venv
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-output results/demo .pytest_cache .ruff_cache
