"""`make audit`: known vulnerabilities in the pinned dependencies.

Python: pip-audit on requirements.txt (everything `make` installs) and
services/requirements-runtime.txt (what the images ship), every pin as it is
(`--no-deps`: the files are complete). It asks OSV, then PyPI's JSON API if
OSV cannot be reached. npm: `npm audit --omit=dev` in frontend/, the packages
the page is built from.

Verdict:
- a vulnerability with a fix released fails the audit (exit 1): upgrade;
- one without a fix is reported and does not fail: nothing to upgrade to;
- a package no vulnerability service could be asked about is *not audited*,
  never "no known vulnerabilities": reported, and with `--require` it fails
  (exit 2). `make audit` requires it on GitHub Actions; here the services
  may be out of reach (see docs/audit.md).

`--ignore ID` (an advisory id or alias) drops an accepted finding; say why
next to it in mk/audit.mk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON_FILES = ("requirements.txt", "services/requirements-runtime.txt")
FRONTEND = ROOT / "frontend"
SERVICES = ("osv", "pypi")  # pip-audit's vulnerability services, in the order asked


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    ids: tuple[str, ...]  # the advisory's id first, then its aliases
    fixed_in: tuple[str, ...]  # versions with the fix; empty when none is released
    fix_available: bool

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in) or 'a newer version'}"
        state = "FIXABLE" if self.fix_available else "no fix"
        ids = " / ".join(self.ids)
        return f"{state:8} {self.package} {self.version}: {ids}" + (
            f" ({fix})" if self.fix_available else ""
        )


@dataclass
class Audit:
    source: str
    findings: list[Finding] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)  # packages, or why nothing was
    notes: list[str] = field(default_factory=list)  # services that could not be asked


def from_pip_audit(source: str, report: dict[str, Any]) -> Audit:
    """pip-audit's JSON report (`--format json`)."""
    audit = Audit(source)
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            audit.unaudited.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns", []):
            fixed = tuple(vuln.get("fix_versions") or ())
            audit.findings.append(
                Finding(
                    package=dep["name"],
                    version=dep["version"],
                    ids=(vuln["id"], *vuln.get("aliases", ())),
                    fixed_in=fixed,
                    fix_available=bool(fixed),
                )
            )
    return audit


def from_npm_audit(source: str, report: dict[str, Any]) -> Audit:
    """`npm audit --json` (report version 2); an error body means nothing was audited."""
    audit = Audit(source)
    if "vulnerabilities" not in report:
        reason = report.get("message") or report.get("error", {}).get("summary") or "no report"
        audit.unaudited.append(f"npm audit: {reason}")
        return audit
    for name, entry in sorted(report["vulnerabilities"].items()):
        fix = entry.get("fixAvailable")
        fixed_in: tuple[str, ...] = ()
        if isinstance(fix, dict):
            fixed_in = (f"{fix.get('name')}@{fix.get('version')}",)
        advisories = [via for via in entry.get("via", []) if isinstance(via, dict)]
        ids = tuple(str(via.get("url") or via.get("source")) for via in advisories)
        # An entry whose `via` names only other packages is vulnerable through them.
        ids = ids or tuple(f"via {via}" for via in entry.get("via", []))
        audit.findings.append(
            Finding(
                package=name,
                version=str(entry.get("range", "")),
                ids=ids,
                fixed_in=fixed_in,
                fix_available=bool(fix),
            )
        )
    return audit


def ignoring(audit: Audit, ignored: Iterable[str]) -> Audit:
    drop = set(ignored)
    kept = [f for f in audit.findings if not drop.intersection(f.ids)]
    return Audit(audit.source, kept, audit.unaudited, audit.notes)


def verdict(audits: Sequence[Audit], *, require: bool) -> tuple[int, list[str]]:
    """The exit status and the lines that say why."""
    lines: list[str] = []
    fixable = no_fix = unaudited = 0
    for audit in audits:
        lines.append(f"== {audit.source}")
        lines += [f"  {finding.line()}" for finding in audit.findings]
        lines += [f"  unreachable: {note}" for note in audit.notes]
        if audit.unaudited:
            lines.append(f"  NOT AUDITED: {len(audit.unaudited)}, e.g. {audit.unaudited[0]}")
        fixable += sum(f.fix_available for f in audit.findings)
        no_fix += sum(not f.fix_available for f in audit.findings)
        unaudited += len(audit.unaudited)
    lines.append(f"audit: {fixable} fixable, {no_fix} without a fix, {unaudited} not audited")
    if fixable:
        lines.append("audit: FAILED: upgrade the packages marked FIXABLE (docs/audit.md)")
        return 1, lines
    if unaudited and require:
        lines.append("audit: FAILED: not every package could be audited, and it is required")
        return 2, lines
    if unaudited:
        lines.append("audit: WARNING: no vulnerability data for the packages not audited")
    return 0, lines


def _run(cmd: Sequence[str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def audit_python(requirements: str, pip_audit: str, ignored: Sequence[str]) -> Audit:
    notes: list[str] = []
    fallback = Audit(f"{requirements} (pip-audit)")
    for service in SERVICES:
        cmd = [
            pip_audit,
            "--requirement",
            requirements,
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--progress-spinner",
            "off",
            *(arg for vuln in ignored for arg in ("--ignore-vuln", vuln)),
        ]
        _, out, err = _run(cmd, ROOT)
        try:
            report = json.loads(out)
        except ValueError:
            notes.append(f"{service}: {_last_line(err)[:300]}")
            continue
        audit = from_pip_audit(f"{requirements} (pip-audit, {service})", report)
        if audit.findings or len(audit.unaudited) < len(report["dependencies"]):
            return audit  # this service answered for some packages at least
        notes.append(f"{service}: it knows none of the {len(audit.unaudited)} packages")
        fallback = audit
    fallback.notes = notes
    if not fallback.unaudited:
        fallback.unaudited.append(f"{requirements}: no vulnerability service answered")
    return fallback


def audit_npm(npm: str) -> Audit:
    _, out, err = _run([npm, "audit", "--omit=dev", "--json"], FRONTEND)
    try:
        report = json.loads(out)
    except ValueError:
        return Audit("frontend (npm audit)", unaudited=[f"npm audit: {_last_line(err)}"])
    return from_npm_audit("frontend (npm audit --omit=dev)", report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.audit", description=__doc__)
    parser.add_argument("--require", action="store_true", help="fail when not all is audited")
    parser.add_argument("--ignore", action="append", default=[], metavar="ID")
    parser.add_argument("--pip-audit", default=str(Path(sys.executable).with_name("pip-audit")))
    parser.add_argument("--npm", default="npm")
    args = parser.parse_args(argv)
    audits = [audit_python(f, args.pip_audit, args.ignore) for f in PYTHON_FILES]
    audits.append(audit_npm(args.npm))
    status, lines = verdict([ignoring(a, args.ignore) for a in audits], require=args.require)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
