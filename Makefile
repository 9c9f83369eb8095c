# The two commands of the README's quick start, plus a few conveniences.
# `make demo` needs no PyTorch; `make test` installs the CPU build of PyTorch first, because an
# unpinned torch from PyPI is a multi-GB CUDA build.
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test lint clean serve

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
	$(PY) -m pip install --quiet -e ".[train,export,demo,bench,dev,openvino]"
	$(MAKE) $(VENV)/.serve-installed
	touch $@ $(VENV)/.demo-installed

# The serve extra without pytriton's numpy<2 pin (pip would downgrade numpy and OpenCV for everything):
# Triton's Python backend stub gets a numpy<2 environment of its own, built here (serving/stubenv.py).
SERVE_DEPS := "tritonclient[grpc,http]>=2.50" "pyzmq>=23" "sh>=1.14" "typer>=0.9" "typing_inspect>=0.6" \
	"wrapt>=1.11" "importlib_metadata>=7.0.1"

serve: $(VENV)/.serve-installed

$(VENV)/.serve-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet $(SERVE_DEPS)
	$(PY) -m pip install --quiet --no-deps "nvidia-pytriton>=0.7"
	$(PY) -c "import artcam.serving" 2>/dev/null || $(PY) -m pip install --quiet -e .
	$(PY) -m artcam.serving.stubenv
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
