# Two commands do everything on a fresh machine: `make demo` and `make test`.
# torch is installed first from the pinned CPU wheel; otherwise pip pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-opm-nlp
TORCH := torch==2.13.0

.PHONY: setup demo test test-deps model bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/opm-nlp demo --out demo_output

# Label Studio (the review server the tests drive) lives in its own venv: it pins its own stack.
LS_VENV := .venv-ls
LS_STAMP := $(LS_VENV)/.installed-label-studio

$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet 'label-studio>=1.23,<1.24'
	touch $(LS_STAMP)

# Headless Chromium (Debian's package) opens the HTML report in the tests.
test-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup test-deps $(LS_STAMP)
	OPM_NLP_REQUIRE_CHROMIUM=1 OPM_NLP_REQUIRE_LABEL_STUDIO=1 $(BIN)/python -m pytest

# Rebuild the shipped default model from the illustrative coded answers, and record its held-out
# figures (the illustrative held-out answers, which it is not trained on) in the model folder.
model: setup
	$(BIN)/opm-nlp train --codebook codebook/opm_behavior_change.yaml \
	    --data examples/opm_coded_illustrative.csv \
	    --text-col answer --id-col response_id --out models/opm_default
	$(BIN)/opm-nlp evaluate models/opm_default --data examples/opm_heldout_illustrative.csv \
	    --text-col answer --id-col response_id --save --quiet

clean:
	rm -rf demo_output .pytest_cache build
