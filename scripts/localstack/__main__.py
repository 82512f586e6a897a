"""``python -m scripts.localstack`` (``make demo-cluster``): the whole stack on a real node
of this Linux machine, built from source and deployed by the real engine, with the
page served through a port-forward on ``HOST:PORT`` until Ctrl-C; then everything
is taken down again (the stack, the port-forward, the node and the control plane).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from scripts.controlplane import K8S, BuildError, ControlPlane, ControlPlaneError, ensure_built
from scripts.engine import ensure_built as ensure_engine
from scripts.gobuild import cache_root

from .deploy import deploy, destroy
from .portforward import PortForwardError, port_forward

NAMESPACE = "pingpod"


def _log(msg: str) -> None:
    print(msg.rstrip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.localstack", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--dir", type=Path, default=cache_root() / "demo-cluster", help="state directory"
    )
    args = parser.parse_args(argv)
    origins = [f"http://{args.host}:{args.port}"]
    if args.host == "127.0.0.1":
        origins.append(f"http://localhost:{args.port}")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    try:
        ensure_built(log=_log)
        ensure_engine(log=_log)
        cp = ControlPlane.start(args.dir / "cluster", real_node=True, timeout=300, log=_log)
    except (BuildError, ControlPlaneError) as exc:
        print(f"demo-cluster FAILED: {exc}", file=sys.stderr)
        return 1
    with cp:
        local = deploy(cp, args.dir / "engine", namespace=NAMESPACE, origins=origins, log=_log)
        try:
            with port_forward(
                K8S.binary("kubectl"),
                cp.kubeconfig,
                NAMESPACE,
                host=args.host,
                port=args.port,
                log=args.dir / "port-forward.log",
            ) as forward:
                _log(f"demo-cluster: up in {time.monotonic() - started:.0f}s")
                _log(f"demo-cluster: serving {forward.url} (Ctrl-C stops and removes everything)")
                stop.wait()
        except PortForwardError as exc:
            print(f"demo-cluster FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            _log("demo-cluster: destroying the stack")
            destroy(local, _log)
    _log("demo-cluster: stopped; nothing is left on the host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
