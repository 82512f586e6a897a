# Known vulnerabilities in the pinned dependencies (scripts/audit.py).
#   audit   the audit's own tests (tests/audit), then pip-audit on
#           requirements.txt and services/requirements-runtime.txt, and
#           `npm audit --omit=dev` in frontend/. Fails on a vulnerability with
#           a fix released; one without a fix is reported. Packages no
#           vulnerability service could be asked about are reported as not
#           audited, and fail the audit where AUDIT_REQUIRED is set (on GitHub
#           Actions by default).
# Needs: PyPI's JSON API or api.osv.dev, and the npm registry's audit endpoint.

AUDIT_REQUIRED ?= $(if $(GITHUB_ACTIONS),1,)
# Accepted findings, one advisory id each, with the reason beside it, e.g.
#   AUDIT_IGNORE += GHSA-xxxx-xxxx-xxxx  # not reachable: we never call foo()
AUDIT_IGNORE :=

TEST_TARGETS += audit

.PHONY: audit

AUDIT_FLAGS = $(if $(AUDIT_REQUIRED),--require) $(foreach id,$(AUDIT_IGNORE),--ignore $(id))

audit: venv node-check
	$(BIN)/pytest tests/audit
	$(BIN)/python -m scripts.audit $(strip $(AUDIT_FLAGS))
