# reportgen: `make demo` writes report.html; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
CACHE  ?= $(or $(REPORTGEN_CACHE),$(HOME)/.cache/reportgen)
SMOLLM := $(CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: help setup demo demo-causal test lint bench fetch-smollm2 clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[test,gguf]"
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install reportgen with its test tools

demo: setup ## Write report.html from sample_inputs/ (the Winograd pairs and more)
	$(BIN)/reportgen -i sample_inputs/winograd.jsonl -o report.html --title "Winograd minimal pairs"

fetch-smollm2: ## Fetch the SmolLM2-135M GGUF file (once) into the cache folder
	@$(BIN)/python -m reportgen.gguf fetch-smollm2 "$(SMOLLM)"

demo-causal: setup fetch-smollm2 ## Write report-causal.html from a real causal LM (SmolLM2 GGUF)
	$(BIN)/reportgen -m "$(SMOLLM)" -o report-causal.html --focus it \
	  --title "What SmolLM2 looks at before its next word" \
	  "The animal didn't cross the street because it was too"

test: setup ## Run the whole suite (browser tests use /usr/bin/chromium)
	$(BIN)/python -m pytest

lint: setup ## ruff and mypy
	$(BIN)/ruff check reportgen tests benchmarks
	$(BIN)/ruff format --check reportgen tests benchmarks
	$(BIN)/mypy reportgen

bench: setup ## Print the size and speed table (benchmarks/bench.py)
	$(BIN)/python benchmarks/bench.py

clean: ## Remove the virtualenv and generated reports
	rm -rf $(VENV) report.html report-causal.html
