"""python -m scripts.contract [--check]: write the page's contract types and the API tables."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from services.provisioner.app import create_app
from services.provisioner.openapi import build_document
from services.provisioner.settings import Settings

from . import tables, typescript

REPO = Path(__file__).resolve().parents[2]


def served_document() -> dict[str, Any]:
    """The document /openapi.json serves, from an app built (not started) with the defaults."""
    with tempfile.TemporaryDirectory() as page:
        app = create_app(Settings(frontend_dir=Path(page)))
    return build_document(app.routes)


def outputs() -> dict[Path, str]:
    doc = REPO / tables.DOC
    return {
        REPO / typescript.SOURCE: typescript.render(served_document()),
        doc: tables.fill(doc.read_text(), tables.tables()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.contract", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; fail if stale")
    args = parser.parse_args()
    stale = {path: text for path, text in outputs().items() if _read(path) != text}
    for path, text in stale.items():
        rel = path.relative_to(REPO)
        if args.check:
            print(f"contract: {rel} is out of date (python -m scripts.contract)", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"contract: wrote {rel}")
    return 1 if args.check and stale else 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
