# graphmint: `make artifacts` runs the zoo, `make test` runs the tests. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= artifacts

.PHONY: all artifacts package test corpus lint format clean distclean

all: artifacts

# torch is pinned in constraints.txt to the CPU build; tensorflow comes as tensorflow-cpu.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[torch,tensorflow,serving,dev,corpus]'
	$(PY) -m pip install --quiet -c constraints.txt --no-deps 'keras-hub>=0.20'
	touch $@

artifacts: $(STAMP)
	$(VENV)/bin/graphmint run graphmint.toml --out $(OUT)
	$(MAKE) package

# the serving bundle, proven by a live inference server before it is handed over
package: $(STAMP)
	$(VENV)/bin/graphmint package $(OUT)
	$(VENV)/bin/graphmint serve-check $(OUT)/serving

# third-party architectures (transformers, keras.applications, keras-hub, plain code): every model ×
# default route must pass or be unsupported/skipped with its upstream reason
CORPUS_OUT ?= corpus-artifacts
corpus: $(STAMP)
	$(VENV)/bin/graphmint run corpus.toml --out $(CORPUS_OUT)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	find $(OUT) -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info $(CORPUS_OUT)
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
