# Frontend (Vite + React + TypeScript in frontend/) and its tests.
#   frontend-build  npm ci when node_modules is missing or older than the lock
#                   file, then type-check (tsc -b) and build into frontend/dist,
#                   which the provisioner serves
#   test-frontend   Vitest unit tests, then the build
#   test-e2e        the built page in headless Chromium against the real
#                   provisioner (local backend), via Python Playwright
#   chromium        Debian's Chromium, installed with apt-get only if missing
# Node.js >= 20.19 with npm comes with the machine image; it is checked, not installed.

FRONTEND := frontend
NPM ?= npm
CHROMIUM ?= /usr/bin/chromium
FRONTEND_STAMP := $(FRONTEND)/node_modules/.stamp-npm-ci
FRONTEND_INPUTS := $(shell find $(FRONTEND)/src -type f 2>/dev/null) \
	$(wildcard $(FRONTEND)/index.html $(FRONTEND)/vite.config.ts $(FRONTEND)/tsconfig*.json) \
	$(FRONTEND)/package.json
# apt-get needs root: use sudo only when not already root.
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)

TEST_TARGETS += test-frontend test-e2e
DEMO_DEPS += frontend-build

.PHONY: frontend-build frontend-deps test-frontend test-e2e chromium node-check

node-check:
	@command -v node >/dev/null && command -v $(NPM) >/dev/null || \
		{ echo "frontend: node and npm are needed (Node.js >= 20.19)" >&2; exit 1; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 20 || (a === 20 && b < 19)) { console.error("frontend: Node.js >= 20.19 is needed (Vite 8), found " + process.version); process.exit(1); }'

# Reinstall from the lock file whenever it (or package.json) is newer than the
# last install; `npm ci` removes node_modules first, so the stamp goes too.
$(FRONTEND_STAMP): $(FRONTEND)/package-lock.json $(FRONTEND)/package.json | node-check
	cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund
	touch $@

frontend-deps: $(FRONTEND_STAMP)

# vite rewrites dist/index.html on every build, so it stands for the whole build.
$(FRONTEND)/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_INPUTS)
	cd $(FRONTEND) && $(NPM) run build

frontend-build: $(FRONTEND)/dist/index.html

test-frontend: frontend-deps
	cd $(FRONTEND) && $(NPM) test
	$(MAKE) --no-print-directory frontend-build

chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium: $(CHROMIUM)"; \
	else \
		$(AS_ROOT) apt-get update -q && \
		$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

test-e2e: venv frontend-build chromium
	PINGPOD_E2E_REQUIRED=1 PINGPOD_CHROMIUM=$(CHROMIUM) $(BIN)/pytest tests/e2e -m "not node"
