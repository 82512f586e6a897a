"""python -m scripts.engine build|bindir|versions"""

from __future__ import annotations

import argparse
import sys
import time

from . import COMPONENTS, BuildError, bindir, ensure_built


def _log(msg: str) -> None:
    # stderr: `bindir` keeps stdout for the one path it prints.
    print(msg, file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    start = time.monotonic()
    try:
        built = ensure_built(force=args.force, log=_log)
        path = bindir()
    except BuildError as exc:
        print(f"engine build FAILED: {exc}", file=sys.stderr)
        return 1
    for name, timings in built.items():
        steps = ", ".join(f"{step} {secs:.1f}s" for step, secs in timings.items())
        _log(f"{name}: {steps}")
    _log(f"build finished in {time.monotonic() - start:.1f}s; binaries in {path}")
    return 0


def cmd_bindir(_: argparse.Namespace) -> int:
    try:
        ensure_built(log=_log)
        print(bindir())
    except BuildError as exc:
        print(f"engine build FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_versions(_: argparse.Namespace) -> int:
    for comp in COMPONENTS:
        print(f"{comp.name} {comp.version} {comp.bin_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.engine",
        description="The Pulumi CLI and the Kubernetes provider, built from source and cached.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build missing binaries into the cache")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("bindir", help="build if needed, then print the directory holding both")
    p.set_defaults(func=cmd_bindir)
    p = sub.add_parser("versions", help="print the pinned versions and cache paths")
    p.set_defaults(func=cmd_versions)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
