# mailroom — every target sets up what it needs (virtual environment, Pulumi engine) by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup venv engine browser azurite linters test unit lint demo bench clean

setup: venv engine ## virtual environment + Pulumi engine (idempotent; seconds when done before)

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "mailroom: installing Python dependencies into $(VENV) ..." >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

engine: venv ## the Pulumi CLI, >= the pinned SDK (built from Go modules unless an official one is on PATH)
	@bash ci/build-pulumi.sh >/dev/null

browser: ## Debian's chromium, for the HTML report test
	@bash ci/install-chromium.sh >/dev/null

azurite: ## Azurite, the Azure Storage emulator from npm, for the shared-store tests
	@bash ci/install-azurite.sh >/dev/null

linters: venv ## actionlint and zizmor, for the pipeline template tests
	@bash ci/install-linters.sh >/dev/null

test: setup browser azurite linters ## the whole test suite (what .ci/run runs)
	$(BIN)/python -m pytest -q

unit: venv ## only the tests that start no process (not marked e2e): seconds, no engine and no Chromium
	$(BIN)/python -m pytest -q -m "not e2e"

lint: venv
	$(BIN)/ruff check infra tests bench
	$(BIN)/mypy

demo: setup ## the main job on the embedded local tenant
	$(BIN)/mailroom demo

bench: setup
	$(BIN)/python bench/validate.py

clean:
	rm -rf .mailroom
