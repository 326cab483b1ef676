# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates .venv and installs the pinned packages first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Node itself comes from the npm registry, pinned beside the CDK CLI in infrastructure/package.json
# (the machine's own Node may be end-of-life): the CDK CLI and jsii, which runs under every
# synthesis, the tests' included, find it first on PATH.
NODE := infrastructure/node_modules/.installed
# checkov pins its own dependencies (boto3, networkx, ...): a virtual environment of its own,
# which tests/infrastructure/test_checks.py runs over the synthesized templates.
CHECKOV_VENV := .venv-checkov
WITH_NODE := PATH="$(abspath infrastructure/node_modules/.bin):$$PATH"

.PHONY: run test lint e2e load bench drill drill-webhooks chaos synth deploy sdk-data clean

# .python-version asks pyenv for Python 3.13, the functions' runtime: Chalice packages for the
# interpreter that runs it, and the package's bytecode only helps when the two are the same.
$(INSTALLED): .python-version requirements.txt constraints.txt runtime/requirements.txt pyproject.toml payments-client/pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	# Chalice refuses pip 26.3 and newer in its environment.
	$(PY) -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	# The operator CLI, payments-dr, on the venv's PATH.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

## run: the service on http://127.0.0.1:8000 against an embedded local AWS (Ctrl-C stops both)
# CONSISTENCY=strong runs the payments table under multi-Region strong consistency's rules.
# TOPOLOGY=active-active has both regions take payments; it needs (and so defaults to) strong.
TOPOLOGY ?= active-passive
CONSISTENCY ?= $(if $(filter active-active,$(TOPOLOGY)),strong,eventual)
run: $(INSTALLED)
	$(PY) -m localenv --consistency $(CONSISTENCY) --topology $(TOPOLOGY)

## test: lint and types, then every test (unit, handlers, integration over HTTP)
# Two workers, each test file on one of them (its module fixtures, a local environment, built
# once): the integration tests mostly wait on their local servers, so the suite takes two thirds
# of the time on CI's 2 cores. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: lint $(NODE) $(CHECKOV_VENV)/.installed
	$(WITH_NODE) $(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

$(CHECKOV_VENV)/.installed: .python-version tools/checkov/requirements.txt tools/checkov/constraints.txt
	$(PYTHON) -m venv --clear $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/checkov/requirements.txt -c tools/checkov/constraints.txt
	touch $@

## lint: ruff (lint and format check); mypy, strict over runtime/ and infrastructure/; the import contracts
# Settings are in pyproject.toml; `ruff format .` and `ruff check --fix .` fix most of what they report.
lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy runtime/app.py runtime/chalicelib infrastructure/stacks payments-client/payments_client localenv operations drills chaos bench tests tools e2e
	# The CDK app's entry is a script named app.py, as the functions' module is: mypy maps both to
	# the module `app`, so it checks the entry in a run (and a cache) of its own.
	$(VENV)/bin/mypy --cache-dir .mypy_cache/cdk-entry infrastructure/app.py
	# pyproject.toml's [tool.importlinter]: folders import downwards, the domain never reaches AWS.
	$(VENV)/bin/lint-imports --no-cache

## load: 10,000 payments from 20 concurrent clients on the local environment, then an audit
# Paced at 30 requests/s, the highest rate that passes here with room to spare (README, "Load
# run"): one local event runner processes about 35-40 payments a second; faster, a backlog
# builds while the clients send and drains after.
LOAD_RATE ?= 30
load: $(INSTALLED)
	$(PY) -m bench.load_run --payments 10000 --clients 20 --rate $(LOAD_RATE)

## drill: the DR drill on a local environment of its own; prints RTO (detect/decide/execute), RPO, a timeline
# DRILL_FAULT=gray (or region, replication-paused) picks another fault; see `python -m drills --help`.
# CONSISTENCY=strong drills the payments table under multi-Region strong consistency's rules;
# TOPOLOGY=active-active drills both regions taking payments, with riders split between them.
DRILL_FAULT ?= api
drill: $(INSTALLED)
	$(PY) -m drills --fault $(DRILL_FAULT) --consistency $(CONSISTENCY) --topology $(TOPOLOGY) --png docs/drill-timeline$(if $(filter active-active,$(TOPOLOGY)),-active-active,)$(if $(filter api,$(DRILL_FAULT)),,-$(DRILL_FAULT)).png

## drill-webhooks: a merchant's receiver down for an hour and the primary lost, in compressed time
drill-webhooks: $(INSTALLED)
	$(PY) -m drills --webhooks

## chaos: the fault-schedule checker, long: 200 random schedules (half under strong consistency),
## 6,000 payments; prints every broken promise and the figures; schedules in .chaos/schedules.jsonl
# CHAOS_SCHEDULES=20 for a shorter run; replay one: `$(PY) -m chaos --replay .chaos/schedules.jsonl`.
CHAOS_SCHEDULES ?= 200
chaos: $(INSTALLED)
	mkdir -p .chaos
	$(PY) -m chaos --schedules $(CHAOS_SCHEDULES) --record .chaos/schedules.jsonl --log .chaos/functions.log

## bench: every benchmark against its baseline from the same run; writes bench/results.md
bench: $(INSTALLED) $(NODE)
	$(WITH_NODE) $(PY) -m bench

## sdk-data: regenerate runtime/chalicelib/sdk_data (the functions' trimmed botocore API data)
# After a botocore upgrade or a new AWS call in chalicelib/adapters/; a unit test fails until then.
sdk-data: $(INSTALLED)
	$(PY) -m tools.sdk_data

CDK := cd infrastructure && $(WITH_NODE) npx --no-install cdk --app "$(abspath $(PY)) app.py"

$(NODE): infrastructure/package.json infrastructure/package-lock.json
	cd infrastructure && npm ci --no-audit --no-fund --silent
	touch $@

## synth: both regional templates into cdk.out/ (offline, no AWS credentials needed)
synth: $(INSTALLED) $(NODE)
	$(CDK) synth --all --quiet --output ../cdk.out

E2E_VENV := .venv-e2e

# The emulator pins its own botocore: it gets a virtual environment of its own.
$(E2E_VENV)/.installed: .python-version e2e/requirements.txt e2e/constraints.txt
	$(PYTHON) -m venv --clear $(E2E_VENV)
	$(E2E_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r e2e/requirements.txt -c e2e/constraints.txt
	touch $@

# The AWS SDK for JavaScript client CDK's custom resource calls (AWS's Node.js runtime has it).
e2e/node_modules/.installed: e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund --silent
	touch $@

## e2e: the synthesized stacks deployed into a local AWS emulator (both regions) and driven end to end
e2e: synth $(E2E_VENV)/.installed e2e/node_modules/.installed
	$(WITH_NODE) $(PY) -m e2e

## deploy: both regions to the AWS account of your current credentials (cdk deploy --all)
deploy: $(INSTALLED) $(NODE)
	$(CDK) deploy --all --require-approval broadening

clean:
	rm -rf $(VENV) $(E2E_VENV) $(CHECKOV_VENV) .e2e e2e/node_modules cdk.out .pytest_cache infrastructure/node_modules infrastructure/chalice.out
