# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv if missing, install, and run the copilot on demo studies
#   make test   - create .venv if missing, install, and run lint, types, the test suite and the
#                 installed-wheel check
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Demo folder: the shared real studies when present, else one laid out by `copilot demo`.
DEMO ?= $(firstword $(wildcard ../shared/data/demo-studies) $(HOME)/.local/share/copilot/demo-studies)
QUESTION ?= Is there cardiomegaly, and what could cause it?
# On machines whose pip is capped to the torch on local disk, ask for exactly that build;
# elsewhere pip picks the right torch for the platform.
TORCH_SPEC := $(shell test -f /etc/xdg/pip/constraints.txt && echo "torch==2.14.1 torchvision==0.29.1")

.PHONY: demo test check lint types unit wheel bench docs install clean

$(BIN)/.installed: pyproject.toml examples/copilot-example-plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -e examples/copilot-example-plugin
	touch $@

install: $(BIN)/.installed

demo: install
	@test -d "$(DEMO)" || $(BIN)/copilot demo "$(DEMO)"
	$(BIN)/copilot kb build
	$(BIN)/copilot studies "$(DEMO)"
	$(BIN)/copilot ask "$(firstword $(wildcard $(DEMO)/*))" "$(QUESTION)"


lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Plain mypy from the repository root over the package tree copilot/ (the root links tools/,
# agents/, prompts/ and tui/ point into it) and the tests' shared fixtures in tests/support/. It
# must check every module of both, none skipped.
types: install
	@mkdir -p build
	@$(BIN)/mypy -v > build/mypy.log 2> build/mypy-verbose.log; status=$$?; cat build/mypy.log; exit $$status
	@sed -n "s|.*Found source: .*path='\($(CURDIR)/\)\{0,1\}\([^']*\.py\)'.*|\2|p" build/mypy-verbose.log | sort > build/mypy-checked.txt
	@find copilot tests/support -name '*.py' -not -path '*/__pycache__/*' | sort > build/mypy-tree.txt
	@diff build/mypy-tree.txt build/mypy-checked.txt > /dev/null || { \
	  echo "mypy did not check every module of the tree (< tree only, > mypy only):"; \
	  diff build/mypy-tree.txt build/mypy-checked.txt; exit 1; }
	@echo "mypy checked all $$(wc -l < build/mypy-tree.txt) modules of the tree and tests/support"

unit: install
	$(BIN)/pytest -q tests examples/copilot-example-plugin/tests

# The wheel as users get it: built from pyproject.toml, installed (not editable) with its ray
# extra (copilot serve, analyze --ray) into its own virtualenv, and run from outside the
# checkout on the demo studies.
WHEEL_VENV := build/wheel-venv
wheel: install
	rm -rf build/dist
	$(BIN)/python -m pip wheel -q --no-deps -w build/dist .
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q $(TORCH_SPEC) "$$(ls build/dist/*.whl)[ray]"
	$(WHEEL_VENV)/bin/python -m pip install -q --force-reinstall --no-deps build/dist/*.whl
	@test -d "$(DEMO)" || $(WHEEL_VENV)/bin/copilot demo "$(DEMO)"
	cd / && $(CURDIR)/$(WHEEL_VENV)/bin/python -c "import copilot, importlib, pkgutil; \
	  assert 'site-packages' in copilot.__file__, copilot.__file__; \
	  names = [m.name for m in pkgutil.walk_packages(copilot.__path__, 'copilot.') if m.name != 'copilot.__main__']; \
	  [importlib.import_module(n) for n in names]; print(f'{len(names)} modules import from the wheel')"
	cd / && $(CURDIR)/$(WHEEL_VENV)/bin/copilot --help > /dev/null
	cd / && $(CURDIR)/$(WHEEL_VENV)/bin/copilot studies "$(abspath $(DEMO))" | tail -3
	cd / && $(CURDIR)/$(WHEEL_VENV)/bin/copilot ask "$(abspath $(firstword $(wildcard $(DEMO)/*)))" "$(QUESTION)"

test: lint types unit wheel

check: test

bench: install
	$(BIN)/python bench/index.py

# The documentation site, its Python API reference (docs/api.md) generated from the docstrings
# by mkdocstrings; --strict fails on any warning (a broken reference, a missing page). Into site/.
docs: install
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build site .pytest_cache .mypy_cache .ruff_cache
