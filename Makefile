# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp
BSTAMP  = $(VENV)/.bench-stamp
DEMO   ?= demo

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv resolves the whole stack in ~10 s where pip takes 1-2 min; pip is the fallback.
	@# --compile-bytecode: uv writes no .pyc by default (pip does), and where
	@# PYTHONDONTWRITEBYTECODE is set every process -- each Dask worker, each test subprocess --
	@# would compile the stack's sources again: ~5 s of imports, measured.
	@($(BIN)/python -m pip install -q uv && \
	  $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[test]') || \
	 $(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

# The benchmarks also need the ~570 MB ROOT wheel (RDataFrame row): only `make bench` installs it.
$(BSTAMP): $(STAMP)
	@($(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[test,bench]') || \
	 $(BIN)/python -m pip install -q -e '.[test,bench]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/wmass demo --out $(DEMO)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules analysis fit processors corrections

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BSTAMP)
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/histmaker.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/fit.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
