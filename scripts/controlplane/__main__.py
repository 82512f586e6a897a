"""python -m scripts.controlplane build|up|down|env|versions"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from scripts.gobuild import build_command

from .build import BuildError, ensure_built
from .cluster import ControlPlane, ControlPlaneError, default_dir
from .components import AUTOSCALING_COMPONENTS, COMPONENTS, NODE_COMPONENTS, PEER_COMPONENTS


def _log(msg: str) -> None:
    print(msg, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    components = (*COMPONENTS, *NODE_COMPONENTS)
    if args.autoscaling:
        components += AUTOSCALING_COMPONENTS
    if args.peers:
        components += PEER_COMPONENTS
    ok = build_command(
        "controlplane", lambda: ensure_built(components, force=args.force, log=_log), _log
    )
    return 0 if ok else 1


def cmd_up(args: argparse.Namespace) -> int:
    start = time.monotonic()
    try:
        cp = ControlPlane.start(
            args.dir,
            nodes=args.nodes,
            timeout=args.timeout,
            detach=True,
            real_node=args.real_node,
            log=_log,
        )
    except (BuildError, ControlPlaneError) as exc:
        print(f"controlplane up FAILED: {exc}", file=sys.stderr)
        return 1
    _log(f"up in {time.monotonic() - start:.1f}s; logs in {cp.log_dir}")
    _log(f"stop with: python -m scripts.controlplane down --dir {shlex.quote(str(cp.dir))}")
    print(cp.kubeconfig)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    path = Path(args.dir).expanduser().resolve() if args.dir else default_dir()
    try:
        cp = ControlPlane.attach(path)
    except ControlPlaneError:
        _log(f"no control plane in {path}")
        return 0
    killed = cp.stop(remove=not args.keep)
    if killed:
        _log(f"killed after the grace period: {', '.join(killed)}")
    _log(f"stopped{'' if args.keep else ' and removed'} {path}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    try:
        cp = ControlPlane.attach(args.dir)
    except ControlPlaneError as exc:
        print(f"{exc}; start one with `python -m scripts.controlplane up`", file=sys.stderr)
        return 1
    if not cp.running():
        print(f"the control plane in {cp.dir} is not running", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={shlex.quote(str(cp.kubeconfig))}")
    return 0


def cmd_versions(_: argparse.Namespace) -> int:
    for comp in (*COMPONENTS, *NODE_COMPONENTS, *AUTOSCALING_COMPONENTS, *PEER_COMPONENTS):
        print(f"{comp.name} {comp.version} {comp.bin_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.controlplane",
        description="Local Kubernetes control plane (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok; optionally a real node: kubelet, "
        "kube-proxy, containerd) built from source.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build missing binaries into the cache")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument(
        "--autoscaling",
        action="store_true",
        help="also Karpenter's kwok provider (node autoscaling; fetches the Go toolchain "
        "its module asks for)",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="also agent-sandbox's controller (the peer warm-pool system bench.peers measures)",
    )
    p.set_defaults(func=cmd_build)

    dir_help = f"state directory (default {default_dir()})"
    p = sub.add_parser("up", help="start a control plane and print the admin kubeconfig path")
    p.add_argument("--dir", help=dir_help)
    p.add_argument("--nodes", type=int, default=2, help="number of fake kwok nodes")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for ready")
    p.add_argument(
        "--real-node",
        action="store_true",
        help="also one real node (kubelet, containerd, CNI on a bridge of this machine); "
        "needs root",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop the control plane and remove its state directory")
    p.add_argument("--dir", help=dir_help)
    p.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("env", help="print `export KUBECONFIG=...`")
    p.add_argument("--dir", help=dir_help)
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("versions", help="print the pinned versions and cache paths")
    p.set_defaults(func=cmd_versions)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
