"""Build every from-source component in the background while the first suites run.

`make test` starts this before its first suite and stops it when it ends. The
Go builds (the control plane, its real node, Karpenter, the Pulumi engine,
agent-sandbox) are
most of a cold run; the first suites (lint, the service tests, the audit) are
Python on one core. Run side by side, the builds are done or under way by the
time a suite needs them. Each suite still runs its own build step: it finds a
component cached, waits for the one being built (``gobuild.ensure_built``
locks per component), or builds it itself, so a failed or stopped background
build changes nothing but the time, and the error is reported where it matters.

    python -m scripts.prebuild start   # detach a builder (niced); its log in <cache>/logs
    python -m scripts.prebuild stop    # stop it if it still runs (its children too)
    python -m scripts.prebuild         # build everything in the foreground
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts import controlplane, engine
from scripts.controlplane.components import PEER_COMPONENTS
from scripts.gobuild import BuildError, Component, cache_root, ensure_built

# In the order `make test` needs them: the control plane (its real node's
# binaries are part of `build --autoscaling`), Karpenter, the engine, agent-sandbox.
ORDER: tuple[Component, ...] = (
    *controlplane.COMPONENTS,
    *controlplane.NODE_COMPONENTS,
    *controlplane.AUTOSCALING_COMPONENTS,
    *engine.COMPONENTS,
    *PEER_COMPONENTS,
)
NICENESS = 10  # the suites running beside it come first
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


def _pid_file() -> Path:
    return cache_root() / "prebuild.pid"


def _log_file() -> Path:
    return cache_root() / "logs" / "prebuild.log"


def _running() -> int | None:
    """The background builder's pid, if one runs (checked by its command line)."""
    try:
        pid = int(_pid_file().read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"scripts.prebuild" in cmdline else None


def build() -> int:
    def log(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    start = time.monotonic()
    try:
        ensure_built(ORDER, log=log)
    except BuildError as exc:
        log(f"prebuild: FAILED (the suite that needs it builds it again): {exc}")
        return 1
    log(f"prebuild: everything built in {time.monotonic() - start:.1f}s")
    return 0


def start() -> int:
    if (pid := _running()) is not None:
        print(f"prebuild: already running (pid {pid})")
        return 0
    _log_file().parent.mkdir(parents=True, exist_ok=True)
    with _log_file().open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.prebuild", "build"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop` takes the go builds too
            preexec_fn=lambda: os.nice(NICENESS),
        )
    _pid_file().write_text(f"{proc.pid}\n")
    print(f"prebuild: building in the background (pid {proc.pid}, log {_log_file()})")
    return 0


def stop() -> int:
    pid = _running()
    if pid is None:
        print("prebuild: not running")
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            while _running() == pid and time.monotonic() < deadline:
                time.sleep(0.2)
            if _running() == pid:
                os.killpg(pid, signal.SIGKILL)
        print(f"prebuild: stopped (pid {pid}; log {_log_file()})")
    _pid_file().unlink(missing_ok=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.prebuild", description=__doc__)
    parser.add_argument("action", nargs="?", choices=("build", "start", "stop"), default="build")
    action = parser.parse_args().action
    return {"build": build, "start": start, "stop": stop}[action]()


if __name__ == "__main__":
    sys.exit(main())
