# DocChat: `make run` starts the app, `make test` runs ruff, mypy and every test. Both set up .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test lint bench clean

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found (DocChat needs Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

# Reinstall only when the requirements change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
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

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-bench.txt
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/ingest.py --json benchmarks/results/ingest.json
	$(BIN)/python benchmarks/query.py --json benchmarks/results/query.json
	$(BIN)/python -m rag eval all --json benchmarks/results/eval-all.json
	$(BIN)/python benchmarks/plot.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
