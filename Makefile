# DocChat: `make run` starts the app, `make test` runs the linters (ruff, mypy, the import
# contract) and every test, `make test-fast` the unit tests alone (no Chroma, model, servers
# or browser). All set up .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found (DocChat needs Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

# Reinstall only when the requirements (or the project's metadata) change. The project
# itself goes in editable and without dependencies (requirements.txt has them): that
# gives the `docchat` command and lets benchmarks import `rag` from anywhere.
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m rag check-bind $${DOCCHAT_HOST:-127.0.0.1}
	$(BIN)/streamlit run app.py --server.address=$${DOCCHAT_HOST:-127.0.0.1} --server.port=$${DOCCHAT_PORT:-8501}

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/unit

bench: $(VENV)/.installed-dev
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-bench.txt
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/ingest.py --json benchmarks/results/ingest.json
	$(BIN)/python benchmarks/query.py --json benchmarks/results/query.json
	$(BIN)/python -m rag eval all --json benchmarks/results/eval-all.json
	$(BIN)/python benchmarks/ablate.py --json benchmarks/results/ablation.json
	$(BIN)/python -m rag eval claims --json benchmarks/results/claims.json
	$(BIN)/python benchmarks/summary_coverage.py --json benchmarks/results/summary_coverage.json
	$(BIN)/python benchmarks/plot.py

# docs/performance.md from benchmarks/results/*.json (run it after `make bench`).
.PHONY: docs
docs: | $(BIN)/python
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
