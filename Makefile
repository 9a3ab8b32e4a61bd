# Everything runs from the project's own virtualenv, made and filled from the pinned requirements.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The CDK's jsii runtime warns on every start about this machine's Node version; the warning is not ours.
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install demo up runner test unit lint typecheck synth bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## The main job on the local stack: submit the example workflow, wait, download into ./out/.
demo: install
	$(PY) -m local demo

## Serve the local stack until Ctrl-C (PORT, API_KEYS, RUNNERS, COMFYUI_URL from the environment).
up: install
	$(PY) -m local up

## One more runner joining a stack started with `make up`.
runner: install
	env $$(cat .local/runner.env) $(PY) -m gpu_runner

## Lint, type-check and the whole test suite.
test: install lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy shared functions gpu_runner local infra app.py

synth: install
	$(PY) app.py

bench: install
	$(PY) -m bench

clean:
	rm -rf .local out cdk.out .pytest_cache .mypy_cache .ruff_cache
