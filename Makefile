# Everything runs from the project's own virtualenv, made and filled from the pinned requirements.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The CDK's jsii runtime prints a banner on every start when Node is past its end of life (Node 20 here).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20

.PHONY: install demo up runner test unit lint typecheck synth scale-model bench cost-doc screenshots conformance clean

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
	$(VENV)/bin/mypy shared functions gpu_runner local infra admin app.py

## Synthesize the CloudFormation template offline into cdk.out/ (no AWS calls, no Docker).
COMFYUI_IMAGE ?= public.ecr.aws/example/comfyui:latest
synth: install
	CDK_OUTDIR=cdk.out CDK_CONTEXT_JSON='{"comfyuiImage": "$(COMFYUI_IMAGE)", "skipBundling": true}' $(PY) app.py
	@ls cdk.out/*.template.json

## A day of traffic across the pools, simulated from the CDK app's own settings (no stack, no AWS).
scale-model: install
	$(VENV)/bin/python -m bench.scale_model

bench: install
	$(PY) -m bench

## docs/cost.md rendered from a fresh count of the reference job (bench.cost, bench.cost_doc).
cost-doc: install
	$(PY) -m bench --only cost --out bench/results
	$(PY) -m bench.cost_doc bench/results/bench-full.json

## The console's screenshots in docs/console/, taken by its browser tests.
screenshots: install
	CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest tests/e2e/test_console_browser.py -q

## Check a ComfyUI end to end before deploying it: `make conformance COMFYUI_URL=http://host:port`
## (the simulator when COMFYUI_URL is empty). Prints pass/fail and the time of each check.
conformance: install
	CONFORMANCE_COMFYUI_URL="$(COMFYUI_URL)" $(PY) -m pytest tests/conformance -v -p no:cacheprovider \
		--durations=0 $(PYTEST_ARGS)

clean:
	rm -rf .local out cdk.out .pytest_cache .mypy_cache .ruff_cache
