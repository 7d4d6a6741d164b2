# graphmint: `make artifacts` runs the zoo, `make test` runs the tests. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK := requirements.lock
STAMP := $(VENV)/.installed-stamp
OUT ?= artifacts
# torch's CPU build is not on PyPI: uv takes it from this folder (pip's configuration names it too)
TORCH_WHEELS ?= /opt/wheels

.PHONY: all artifacts package bench bench-pipeline test test-long corpus lint format clean distclean lock

all: artifacts

# .venv holds exactly requirements.lock (every extra, torch's CPU build, keras-hub without
# tensorflow-text), hash-checked, then graphmint itself (editable). uv installs it: pip bootstraps uv
# from the lock's own line for it, then uv syncs the lock, which also removes what the lock does not list.
# --compile-bytecode, as pip does: where PYTHONDONTWRITEBYTECODE is set, a process that imports torch and
# TensorFlow from source without .pyc files takes 26 s instead of 10.
$(UV):
	@echo "setup [1/3] $(VENV) and uv"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/ { p = 1; print; next } p && /^ +--hash/ { print; next } p { exit }' $(LOCK) > $(VENV)/uv.txt
	@$(PY) -m pip install -qq --no-deps --require-hashes -r $(VENV)/uv.txt

$(STAMP): $(LOCK) pyproject.toml constraints.txt | $(UV)
	@$(PYTHON) tests/test_lock.py --check
	@echo "setup [2/3] $(VENV) = $(LOCK) ($$(grep -c '^[a-z0-9]' $(LOCK)) packages)"
	@$(UV) pip sync --quiet --python $(PY) --require-hashes --compile-bytecode \
		--find-links $(TORCH_WHEELS) $(LOCK)
	@echo "setup [3/3] graphmint (editable)"
	@$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

# Re-resolve requirements.lock from pyproject.toml (every extra and the `make` group) and
# constraints.txt, keeping each pin that still fits: LOCK_ARGS=--upgrade takes the newest versions
# allowed, LOCK_ARGS='-P onnx' one package's. Then `make test`, and commit the lock with the change.
lock: | $(UV)
	$(UV) pip compile --quiet pyproject.toml --all-extras --group make -c constraints.txt \
		--find-links $(TORCH_WHEELS) --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS) -o $(LOCK)
	$(PYTHON) tests/test_lock.py --stamp

artifacts: $(STAMP)
	$(VENV)/bin/graphmint run graphmint.toml --out $(OUT)
	$(MAKE) package

# the serving bundle, proven by a live inference server before it is handed over
package: $(STAMP)
	$(VENV)/bin/graphmint package $(OUT)
	$(VENV)/bin/graphmint serve-check $(OUT)/serving

# latency, throughput, memory and size of every verified artifact next to eager (bench.json, bench.md,
# plots/*.bench.png), the fastest recorded as each manifest's `recommended`. It loads formats that run
# code (and the zoo's own code) with --trust: these are the artifacts `make artifacts` just built here.
BENCH_ARGS ?= --batch 1,8
bench: $(STAMP)
	@test -f $(OUT)/report.json || $(MAKE) artifacts
	$(VENV)/bin/graphmint bench $(OUT) --trust $(BENCH_ARGS)

# the CI loop's own speed, on a scratch copy of the zoo: cold with --jobs 1 and with every core, warm
# (nothing changed: all from the cache), and one model's factory touched (that model alone runs again)
bench-pipeline: $(STAMP)
	$(PY) -m graphmint.pipeline.bench.pipeline graphmint.toml

# third-party architectures (transformers, keras.applications, keras-hub, plain code): every model ×
# default route must pass or be unsupported/skipped with its upstream reason
# (the default routes, and the opt-in deployment targets: ExecuTorch, LiteRT, OpenVINO, Keras on torch)
CORPUS_OUT ?= corpus-artifacts
CORPUS_ROUTES ?= default,edge,openvino,keras-torch
# the corpus models given by path (folders and files the libraries' own save functions write) are
# written first, into corpus-models/, from the corpus factories' seeded weights
corpus: $(STAMP)
	$(PY) -m graphmint.models.corpus_files corpus-models
	$(VENV)/bin/graphmint run corpus.toml --routes $(CORPUS_ROUTES) --out $(CORPUS_OUT)

test: $(STAMP)
	$(PY) -m pytest

# the long checks that `make test` leaves out: every third-party corpus model through pytest, every
# ONNX backend-test folder through `graphmint validate`, the reduced-precision routes on third-party
# models, the Ray executor, and slower variants of checks `make test` makes (marked `long`)
test-long: $(STAMP)
	$(PY) -m pytest -m 'corpus or long'

# ruff, then mypy ([tool.mypy] in pyproject.toml: graphmint.* through the links in .typing/graphmint)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	find $(OUT) -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache build *.egg-info $(CORPUS_OUT) corpus-models
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
