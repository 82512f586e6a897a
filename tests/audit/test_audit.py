"""The audit's verdict (scripts/audit.py) on reports in the tools' own JSON
formats: pip-audit's `--format json` and `npm audit --json` (version 2). The
real tools run in `make audit` itself."""

from __future__ import annotations

from typing import Any

from scripts.audit import Audit, from_npm_audit, from_pip_audit, ignoring, verdict


def pip_report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


FIXABLE = {
    "name": "jinja2",
    "version": "2.10",
    "vulns": [
        {
            "id": "PYSEC-2019-217",
            "fix_versions": ["2.10.1"],
            "aliases": ["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
            "description": "sandbox escape via str.format_map",
        }
    ],
}
NO_FIX = {
    "name": "ecdsa",
    "version": "0.19.0",
    "vulns": [
        {
            "id": "PYSEC-2024-xx",
            "fix_versions": [],
            "aliases": ["CVE-2024-23342"],
            "description": "timing side channel; the maintainers plan no fix",
        }
    ],
}
CLEAN = {"name": "starlette", "version": "1.10.0", "vulns": []}
SKIPPED = {
    "name": "uvicorn",
    "skip_reason": "Dependency not found on PyPI and could not be audited: uvicorn (0.54.0)",
}

NPM_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "nanoid": {
            "name": "nanoid",
            "severity": "moderate",
            "isDirect": False,
            "via": [
                {
                    "source": 1101163,
                    "name": "nanoid",
                    "dependency": "nanoid",
                    "title": "Predictable results in nanoid generation",
                    "url": "https://github.com/advisories/GHSA-mwcw-c2x4-8c55",
                    "severity": "moderate",
                    "range": "<3.3.8",
                }
            ],
            "effects": ["postcss"],
            "range": "<3.3.8",
            "nodes": ["node_modules/nanoid"],
            "fixAvailable": True,
        },
        "postcss": {
            "name": "postcss",
            "severity": "moderate",
            "isDirect": True,
            "via": ["nanoid"],
            "effects": [],
            "range": "8.0.0 - 8.4.30",
            "nodes": ["node_modules/postcss"],
            "fixAvailable": {"name": "postcss", "version": "8.4.31", "isSemVerMajor": False},
        },
        "old-lib": {
            "name": "old-lib",
            "severity": "high",
            "isDirect": True,
            "via": [{"source": 1, "url": "https://github.com/advisories/GHSA-aaaa-bbbb-cccc"}],
            "effects": [],
            "range": "*",
            "nodes": ["node_modules/old-lib"],
            "fixAvailable": False,
        },
    },
    "metadata": {"vulnerabilities": {"moderate": 2, "high": 1, "total": 3}},
}
NPM_UNREACHABLE = {
    "message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
    "method": "POST",
    "statusCode": 405,
    "error": {"summary": "", "detail": ""},
}


def test_a_vulnerability_with_a_fix_fails() -> None:
    audit = from_pip_audit("requirements.txt", pip_report(FIXABLE, CLEAN))
    status, lines = verdict([audit], require=False)
    assert status == 1
    assert any("FIXABLE" in line and "jinja2 2.10" in line and "2.10.1" in line for line in lines)
    assert lines[-1].startswith("audit: FAILED")


def test_a_vulnerability_without_a_fix_is_reported_and_passes() -> None:
    audit = from_pip_audit("requirements.txt", pip_report(NO_FIX, CLEAN))
    status, lines = verdict([audit], require=True)
    assert status == 0
    assert any("no fix" in line and "CVE-2024-23342" in line for line in lines)
    assert "1 without a fix" in lines[-1]


def test_what_could_not_be_looked_up_is_never_called_clean() -> None:
    audit = from_pip_audit("requirements.txt", pip_report(CLEAN, SKIPPED))
    assert audit.unaudited == [f"uvicorn: {SKIPPED['skip_reason']}"]
    status, lines = verdict([audit], require=False)
    assert status == 0 and "1 not audited" in lines[-2] and "WARNING" in lines[-1]
    status, lines = verdict([audit], require=True)
    assert status == 2 and "FAILED" in lines[-1]


def test_npm_fixes_and_their_absence() -> None:
    audit = from_npm_audit("frontend", NPM_REPORT)
    by_name = {f.package: f for f in audit.findings}
    assert by_name["nanoid"].fix_available
    assert by_name["nanoid"].ids == ("https://github.com/advisories/GHSA-mwcw-c2x4-8c55",)
    assert by_name["postcss"].fix_available and by_name["postcss"].fixed_in == ("postcss@8.4.31",)
    assert by_name["postcss"].ids == ("via nanoid",)
    assert not by_name["old-lib"].fix_available
    assert verdict([audit], require=True)[0] == 1
    unfixable = Audit("frontend", [by_name["old-lib"]])
    assert verdict([unfixable], require=True)[0] == 0


def test_npm_without_its_audit_endpoint_is_not_audited() -> None:
    audit = from_npm_audit("frontend", NPM_UNREACHABLE)
    assert audit.findings == [] and "405 Method Not Allowed" in audit.unaudited[0]
    assert verdict([audit], require=True)[0] == 2


def test_an_accepted_finding_is_ignored_by_any_of_its_ids() -> None:
    audit = from_pip_audit("requirements.txt", pip_report(FIXABLE))
    assert verdict([ignoring(audit, ["GHSA-462w-v97r-4m45"])], require=True)[0] == 0
    assert verdict([ignoring(audit, ["CVE-0000-0000"])], require=True)[0] == 1


def test_the_worst_of_several_sources_decides() -> None:
    clean = from_pip_audit("services/requirements-runtime.txt", pip_report(CLEAN))
    bad = from_npm_audit("frontend", NPM_REPORT)
    status, lines = verdict([clean, bad], require=False)
    assert status == 1
    assert lines[0] == "== services/requirements-runtime.txt" and "== frontend" in lines
