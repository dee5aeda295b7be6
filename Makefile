# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv if missing, install, and run the copilot on demo studies
#   make test   - create .venv if missing, install, and run lint, types and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Demo folder: the shared real studies when present, else one laid out by `copilot demo`.
DEMO ?= $(firstword $(wildcard ../shared/data/demo-studies) $(HOME)/.local/share/copilot/demo-studies)
QUESTION ?= Is there cardiomegaly, and what could cause it?
# On machines whose pip is capped to the torch on local disk, ask for exactly that build;
# elsewhere pip picks the right torch for the platform.
TORCH_SPEC := $(shell test -f /etc/xdg/pip/constraints.txt && echo "torch==2.14.1 torchvision==0.29.1")

.PHONY: demo test check lint types unit bench install clean

$(BIN)/.installed: pyproject.toml examples/copilot-example-plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -e examples/copilot-example-plugin
	touch $@

install: $(BIN)/.installed

demo: install
	@test -d "$(DEMO)" || $(BIN)/copilot demo "$(DEMO)"
	$(BIN)/copilot studies "$(DEMO)"
	$(BIN)/copilot ask "$(firstword $(wildcard $(DEMO)/*))" "$(QUESTION)"


lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow the package-dir mapping, so it checks a symlinked copilot/ tree in
# which tools/, agents/, prompts/ and tui/ sit where they install.
types: install
	rm -rf build/typecheck && mkdir -p build/typecheck/copilot
	for f in copilot/*; do ln -s "$(CURDIR)/$$f" build/typecheck/copilot/; done
	for d in tools agents prompts tui; do ln -s "$(CURDIR)/$$d" build/typecheck/copilot/$$d; done
	cd build/typecheck && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml

unit: install
	$(BIN)/pytest -q tests examples/copilot-example-plugin/tests

test: lint types unit

check: test

bench: install
	$(BIN)/python bench/index.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
