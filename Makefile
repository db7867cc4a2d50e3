# Two commands do everything on a fresh machine: `make demo` and `make test`.
# torch is installed first from the pinned CPU wheel; otherwise pip pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-opm-nlp
TORCH := torch==2.13.0

.PHONY: setup demo test model bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/opm-nlp demo --out demo_output

test: setup
	$(BIN)/python -m pytest

# Rebuild the shipped default model from the illustrative coded answers.
model: setup
	$(BIN)/opm-nlp train --codebook codebook/opm_behavior_change.yaml \
	    --data examples/opm_coded_illustrative.csv \
	    --text-col answer --id-col response_id --out models/opm_default

clean:
	rm -rf demo_output .pytest_cache
