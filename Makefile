# One-command run and test. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEV    := .vir/dev
export VIR_PORT ?= 8443
export VIR_KEYHOLDER_PORT ?= 8444
# Spectral (OpenAPI linter) with the Logius API Design Rules ruleset, installed into
# the repository from npm at a pinned version; it runs offline once installed.
SPECTRAL_VERSION := 6.16.3
NODE_DIR := .ci/node
SPECTRAL := $(NODE_DIR)/node_modules/.bin/spectral
SPECTRAL_STAMP := $(NODE_DIR)/.installed-$(SPECTRAL_VERSION)
# axe-core, the accessibility engine the portal's browser tests run in every page.
AXE_VERSION := 4.14.1
AXE_DIR := .ci/axe
AXE_STAMP := $(AXE_DIR)/.installed-$(AXE_VERSION)

.PHONY: setup run run-threshold dev demo bench test lint typecheck samples-check spectral portal-js-check check clean

$(STAMP): pyproject.toml scripts/ensure-libsodium.sh
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vir needs Python 3.11 or newer")'
	@scripts/ensure-libsodium.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

## Development PKI, demo organisations, databases and keys, for the index and its key
## holder(s) (VIR_DEV_THRESHOLD=2-of-3: three holders sharing the key); reuses what exists.
dev: $(STAMP)
	$(BIN)/vir dev init --dev-dir $(DEV)

## The index on VIR_PORT, the key holder(s) from VIR_KEYHOLDER_PORT on, the portal on
## VIR_PORTAL_PORT (8445) and its development OpenID provider (8446), until Ctrl-C.
run: dev
	@echo
	@echo "vir index on https://127.0.0.1:$(VIR_PORT), key holder(s): see $(DEV)/endpoints.json"
	@echo "Mutual TLS; the CA is $(DEV)/ca.crt; demo organisations: $(DEV)/orgs.json"
	@echo "Portal (in a browser): https://127.0.0.1:$${VIR_PORTAL_PORT:-8445} - sign in as a demo user (README)"
	@echo "In another terminal: make demo"
	@echo "Try:  echo 123456782 | $(BIN)/vir-client --dev-org gp pseudonymise bsn"
	@echo "  or: curl --cacert $(DEV)/ca.crt --cert $(DEV)/orgs/00000009000000000002.crt --key $(DEV)/orgs/00000009000000000002.key https://127.0.0.1:$(VIR_PORT)/health"
	@echo
	VIR_DEV=1 $(BIN)/vir dev run

## The same with three key holders, any two of which pseudonymise (threshold OPRF).
run-threshold:
	VIR_DEV_THRESHOLD=2-of-3 $(MAKE) run

## The school/GP/youth-care scenario against the service that `make run` started.
## It finds the index in $(DEV)/endpoints.json, as `make run` wrote it (VIR_PORT and all).
demo: $(STAMP)
	$(BIN)/vir demo --dev-dir $(DEV)

## Every figure against a baseline measured in the same run (docs/benchmarks.md; bench/results/).
bench: $(STAMP)
	$(BIN)/python bench/bench.py

test: $(STAMP) $(AXE_STAMP)
	@scripts/ensure-nginx.sh
	@scripts/ensure-softhsm.sh
	@scripts/ensure-chromium.sh
	$(BIN)/python -m pytest
	@scripts/ensure-postgres.sh
	VIR_TEST_DATABASE=postgresql $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check vir tests bench scripts
	$(BIN)/ruff format --check vir tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

## docs/privacy/samples/ as scripts/report-samples.py makes them (run it to regenerate).
samples-check: $(STAMP)
	$(BIN)/python scripts/report-samples.py --check

$(SPECTRAL_STAMP):
	@command -v npm >/dev/null || { echo "make spectral needs npm (Debian: apt-get install npm)"; exit 1; }
	rm -rf $(NODE_DIR)
	SCARF_ANALYTICS=false npm install --prefix $(NODE_DIR) --no-audit --no-fund --ignore-scripts \
	  --save-exact @stoplight/spectral-cli@$(SPECTRAL_VERSION)
	@touch $(SPECTRAL_STAMP)

## The OpenAPI documents the index and the key holder serve, linted against the API Design Rules.
$(AXE_STAMP):
	@command -v npm >/dev/null || { echo "make test needs npm for axe-core (Debian: apt-get install npm)"; exit 1; }
	rm -rf $(AXE_DIR)
	npm install --prefix $(AXE_DIR) --no-audit --no-fund --ignore-scripts --save-exact axe-core@$(AXE_VERSION)
	@touch $(AXE_STAMP)

spectral: $(STAMP) $(SPECTRAL_STAMP)
	@mkdir -p .ci/out
	$(BIN)/python .ci/dump_openapi.py .ci/out/openapi.json .ci/out/keyholder-openapi.json
	$(SPECTRAL) lint --ruleset .ci/spectral.yaml --fail-severity error .ci/out/openapi.json
	$(SPECTRAL) lint --ruleset .ci/spectral.yaml --fail-severity error .ci/out/keyholder-openapi.json

## vir/portal/static/vir-blind.js is what scripts/build-portal-js.sh builds from vir/portal/js.
portal-js-check:
	scripts/build-portal-js.sh --check

check: lint typecheck samples-check spectral portal-js-check test

clean:
	rm -rf $(VENV) .vir $(NODE_DIR) .ci/out
