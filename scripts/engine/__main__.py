"""python -m scripts.engine build|bindir|versions|stack"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scripts.gobuild import build_command, cache_root

from . import COMPONENTS, BuildError, bindir, ensure_built


def _log(msg: str) -> None:
    # stderr: `bindir` keeps stdout for the one path it prints.
    print(msg, file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    if not build_command("engine", lambda: ensure_built(force=args.force, log=_log), _log):
        return 1
    _log(f"binaries in {bindir()}")
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


def cmd_stack(args: argparse.Namespace) -> int:
    # Imported here: the Pulumi SDK is only needed by this command.
    from pulumi import automation as auto

    from .stack import Engine

    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig or not Path(kubeconfig).is_file():
        print("stack: KUBECONFIG must name a kubeconfig file", file=sys.stderr)
        return 2
    settings: dict[str, str] = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"stack: --config expects key=value, got {item!r}", file=sys.stderr)
            return 2
        settings[key if ":" in key else f"pingpod:{key}"] = value
    try:
        ensure_built(log=_log)
        path = bindir()
    except BuildError as exc:
        print(f"engine build FAILED: {exc}", file=sys.stderr)
        return 1
    os.environ["PATH"] = f"{path}{os.pathsep}{os.environ['PATH']}"
    engine = Engine(root=Path(args.dir), bin_dir=path, kubeconfig=Path(kubeconfig))
    engine.install_provider()
    stack = engine.stack("local")
    stack.set_all_config({key: auto.ConfigValue(value) for key, value in settings.items()})
    try:
        if args.operation == "preview":
            stack.preview(on_output=print)
        elif args.operation == "up":
            stack.up(on_output=print)
        elif args.operation == "refresh":
            stack.refresh(on_output=print)
        else:
            stack.destroy(on_output=print)
    except auto.errors.CommandError as exc:
        print(f"stack {args.operation} FAILED: {exc}", file=sys.stderr)
        return 1
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
    p = sub.add_parser(
        "stack",
        help="preview, up, refresh or destroy the local stack on $KUBECONFIG with these binaries",
    )
    p.add_argument("operation", choices=("preview", "up", "refresh", "destroy"))
    p.add_argument(
        "--dir",
        default=str(cache_root() / "engine-local"),
        help="work directories, file backend and Pulumi home (default %(default)s)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="stack setting on top of Pulumi.local.yaml, e.g. kubeContext=ctx (repeatable)",
    )
    p.set_defaults(func=cmd_stack)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
