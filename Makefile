# Two commands on a fresh machine: `make run` (the main job on embedded defaults) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The product packages mypy checks ([tool.mypy] in pyproject.toml); tests are left to pytest.
TYPED  := agents backtest bastion bot engine inference storage tools training

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The editable install (hatchling) is a plain .pth to this folder: the layout imports as it is, with no import hook
# and no build warning at install (setuptools warned in both of its editable modes).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/bastion db upgrade
	$(BIN)/bastion chat

# The suite on two workers (a test file stays on one), then the few tests that cannot be distributed.
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

bench: $(VENV)/.installed-dev
	@for f in tests/bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
