# The two entry points of the README: `make demo` (the main job) and `make test`.
# Each creates or refreshes .venv itself. torch is pinned to the CPU build that lies
# on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: venv demo test test-matrix lint docs fashion-mnist chromium clean

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

# Installs Debian's headless Chromium and its driver where possible (root with apt), so
# the report's browser test runs; elsewhere that test is skipped with the reason.
chromium:
	@if ! { [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null; } \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) \
		|| echo "note: could not install chromium; the report's browser test will be skipped"; \
	fi

# The demo study (src/losslab/studies/demo.toml, embedded data only) into results/demo, then its report.
# A second `make demo` finds every cell stored and only rebuilds the report. losslab's
# default parallelism runs it on one worker process per core, one torch thread each
# (src/losslab/study/policy.py); `losslab run --dry-run` shows the choice.
demo: venv
	$(PY) -m losslab.cli run demo --scale quick --out results/demo
	$(PY) -m losslab.cli report results/demo

test: venv fashion-mnist chromium
	$(PY) -m ruff check src tests benchmarks docs
	$(PY) -m mypy
	$(PY) -m losslab.cli reproduce --check
	$(PY) -m pytest -q -n 2 --dist loadfile
	$(DOCS_BUILD)

# The docs site (mkdocs.yml) into site/: strict, so a broken link or reference, or a
# docstring griffe cannot read, fails the build; it needs no network. The galleries'
# pictures are cached in .cache/docs, so a second build only draws what changed.
DOCS_BUILD := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet
docs: venv
	$(DOCS_BUILD)

# The numerical tests again under each SIMD level the CPU has and with 1, 2 and 4 threads:
# other kernels and other reduction orders round differently, so a tolerance fitted to one
# machine fails on the next. ATen's level is pinned by ATEN_CPU_CAPABILITY; MKL's and
# oneDNN's matmuls by their own variables, to the same level, and so are NumPy's dispatched
# kernels (NPY_DISABLE_CPU_FEATURES) and OpenBLAS's (OPENBLAS_CORETYPE) for npnet and the
# float64 references. Threads: the level runs use one
# thread per xdist worker; the thread runs one process with OMP_NUM_THREADS (tests/conftest.py
# honours it), passive waiting so that 4 threads on 2 cores do not spin.
MATRIX_TESTS := tests/test_train.py tests/test_models.py tests/test_losses.py \
	tests/test_losses_two_scale.py tests/test_activations.py tests/test_npnet_parity.py \
	tests/test_npnet_optim.py tests/test_train_engine.py tests/test_seeding.py \
	tests/test_losses_interface.py tests/test_losses_precision.py \
	tests/test_losses_transforms.py tests/test_readme_api.py tests/test_npnet_functional.py \
	tests/test_npnet_train.py tests/test_metrics_measurements.py \
	tests/test_metrics_measurements_engine.py tests/test_study_run.py
THREAD_TESTS := tests/test_train.py tests/test_models.py tests/test_npnet_parity.py \
	tests/test_npnet_optim.py tests/test_train_engine.py tests/test_seeding.py \
	tests/test_losses.py tests/test_losses_two_scale.py tests/test_losses_interface.py \
	tests/test_losses_precision.py tests/test_activations.py \
	tests/test_metrics_measurements.py tests/test_metrics_measurements_engine.py \
	tests/test_study_run.py
ISA_default := MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 \
	NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR OPENBLAS_CORETYPE=Prescott
ISA_avx2 := MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \
	NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR OPENBLAS_CORETYPE=Haswell
ISA_avx512 := MKL_ENABLE_INSTRUCTIONS=AVX512 ONEDNN_MAX_CPU_ISA=AVX512_CORE \
	OPENBLAS_CORETYPE=SkylakeX
CAPABILITIES := default avx2 $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo avx512)

test-matrix: venv
	@set -e; for cap in $(CAPABILITIES); do \
		echo "== ATEN_CPU_CAPABILITY=$$cap, 1 thread per worker"; \
		env $$(case $$cap in default) echo $(ISA_default);; avx2) echo $(ISA_avx2);; \
			avx512) echo $(ISA_avx512);; esac) ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=1 \
			$(PY) -m pytest -q -n 2 --dist loadfile $(MATRIX_TESTS); \
	done; \
	for threads in 2 4; do \
		echo "== $$threads threads"; \
		OMP_NUM_THREADS=$$threads OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -p no:xdist \
			$(THREAD_TESTS); \
	done

lint: venv
	$(PY) -m ruff check src tests benchmarks docs

clean:
	rm -rf $(VENV) results/demo/study.sqlite* results/demo/report .pytest_cache .ruff_cache .mypy_cache site .cache/docs
