# Entry points: `make demo` (local demo, no cloud) and `make test` (everything CI runs).
# Each concern adds its own targets in mk/*.mk and registers them in
# TEST_TARGETS / DEMO_DEPS, so this file stays small.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make demo`'s metrics listener (GET /metrics), beside PORT on HOST; 0 turns it off.
METRICS_PORT ?= 9090
export HOST PORT METRICS_PORT

TEST_TARGETS := lint test-services
DEMO_DEPS := venv

.PHONY: all demo test test-suites prebuild lint fmt venv test-services bench clean
all: test

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

# $(call apt-install,PACKAGES): apt-get install those of PACKAGES that are missing, as
# root (sudo when not root); nothing when all are there.
APT_AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)
define apt-install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		$(APT_AS_ROOT) apt-get update -q && \
		$(APT_AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
endef

include $(sort $(wildcard mk/*.mk))

demo: $(DEMO_DEPS)
	$(BIN)/python -m services.provisioner

# The Go builds run in the background beside the first suites (scripts/prebuild.py);
# each suite's own build step then finds them cached, or waits for the one under way.
test: venv
	$(BIN)/python -m scripts.prebuild start
	trap '$(BIN)/python -m scripts.prebuild stop' EXIT; $(MAKE) --no-print-directory test-suites
	@echo "make test: all suites passed ($(TEST_TARGETS))"

test-suites: $(TEST_TARGETS)

# Every from-source component, in the foreground (what `make test` starts in the background).
prebuild: venv
	$(BIN)/python -m scripts.prebuild

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-services: venv
	$(BIN)/pytest tests/services

bench: venv
	$(BIN)/python -m bench.sessions

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist artifacts
