"""Build the control-plane binaries from source into the version-keyed cache.

Only the Go toolchain and the Go module proxy are needed. Each wrapper module
carries a complete go.sum, so ``-mod=readonly`` builds never consult the
checksum database: every downloaded module is checked against the committed
hashes instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .components import COMPONENTS, ETCD, K8S, Component, cache_root

# Bump when the way binaries are built changes, so cached builds are redone.
BUILD_FORMAT = 1
STAMP = ".build.json"

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; the message says which and where the full log is."""


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CGO_ENABLED="0",
        GO111MODULE="on",
        GOWORK="off",
        # Overrides GOFLAGS from `go env -w`: never rewrite go.mod/go.sum, no VCS stamping
        # (the wrapper modules sit inside this repository's checkout).
        GOFLAGS="-mod=readonly -buildvcs=false -trimpath",
    )
    return env


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain is not on PATH: install Go >= 1.26 (what the wrapper "
            "go.mod files under scripts/controlplane/build/ ask for) and retry"
        )
    return go


def _run(argv: list[str], *, cwd: Path, log_file: Path, what: str) -> str:
    """Run a go command, appending its output to ``log_file``; raise BuildError on failure."""
    with log_file.open("a") as out:
        out.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
        out.flush()
        proc = subprocess.run(
            argv, cwd=cwd, env=go_env(), capture_output=True, text=True, check=False
        )
        out.write(proc.stdout)
        out.write(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {proc.returncode}); full log: {log_file}\n{tail}")
    return proc.stdout


def _module_origin(comp: Component, log_file: Path) -> tuple[str, str]:
    """(commit, tag time) of the component's release, from the module proxy's metadata."""
    out = _run(
        [_go(), "mod", "download", "-json", f"{comp.module}@{comp.version}"],
        cwd=comp.module_dir,
        log_file=log_file,
        what=f"go mod download {comp.module}@{comp.version}",
    )
    meta = json.loads(out)
    commit = str(meta.get("Origin", {}).get("Hash", ""))
    tag_time = ""
    info = meta.get("Info")
    if info and Path(info).is_file():
        tag_time = str(json.loads(Path(info).read_text()).get("Time", ""))
    return commit, tag_time


def _ldflags(comp: Component, commit: str, tag_time: str) -> str:
    flags = ["-s", "-w"]
    if comp is K8S:
        # Without these every binary reports v0.0.0, and clients refuse or warn.
        version = comp.version
        major, minor = version.lstrip("v").split(".")[:2]
        values = {
            "gitVersion": version,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
            "gitCommit": commit,
            "buildDate": tag_time,
        }
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X {pkg}.{key}={value}" for key, value in values.items() if value]
    elif comp is ETCD and commit:
        flags.append(f"-X go.etcd.io/etcd/api/v3/version.GitSHA={commit[:9]}")
    return " ".join(flags)


def fingerprint(comp: Component) -> str:
    """Changes whenever the inputs of a build change (module files, binaries, build format)."""
    digest = hashlib.sha256(f"{BUILD_FORMAT}:{comp.binaries}".encode())
    for name in ("go.mod", "go.sum"):
        digest.update((comp.module_dir / name).read_bytes())
    return digest.hexdigest()


def is_built(comp: Component) -> bool:
    stamp = comp.bin_dir / STAMP
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text()).get("fingerprint")
    except ValueError:
        return False
    return recorded == fingerprint(comp) and all(
        comp.binary(name).is_file() for name, _ in comp.binaries
    )


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds between concurrent runs (two test sessions, CLI and pytest)."""
    lock_path = cache_root() / "bin" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go_version() -> str:
    return subprocess.run(
        [_go(), "version"], capture_output=True, text=True, check=True, env=go_env()
    ).stdout.strip()


def build_component(comp: Component, log: Log = print) -> dict[str, float]:
    """Build every binary of ``comp``; returns seconds per step."""
    log_dir = cache_root() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"build-{comp.name}-{comp.version}.log"
    log_file.write_text("")
    if comp.bin_dir.exists():
        shutil.rmtree(comp.bin_dir)
    comp.bin_dir.mkdir(parents=True)
    timings: dict[str, float] = {}

    start = time.monotonic()
    log(f"[{comp.name} {comp.version}] downloading modules (go mod download)")
    _run([_go(), "mod", "download"], cwd=comp.module_dir, log_file=log_file, what="go mod download")
    commit, tag_time = _module_origin(comp, log_file)
    timings["download"] = time.monotonic() - start
    ldflags = _ldflags(comp, commit, tag_time)

    for name, package in comp.binaries:
        start = time.monotonic()
        log(f"[{comp.name} {comp.version}] building {name}")
        tmp = comp.bin_dir / f".{name}.tmp"
        _run(
            [_go(), "build", "-ldflags", ldflags, "-o", str(tmp), package],
            cwd=comp.module_dir,
            log_file=log_file,
            what=f"go build {package}",
        )
        tmp.replace(comp.binary(name))
        timings[name] = time.monotonic() - start
        log(f"[{comp.name} {comp.version}] built {name} in {timings[name]:.1f}s")

    stamp = {
        "fingerprint": fingerprint(comp),
        "module": comp.module,
        "version": comp.version,
        "commit": commit,
        "go": _go_version(),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (comp.bin_dir / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return timings


def ensure_built(
    components: Iterable[Component] = COMPONENTS, *, log: Log = print, force: bool = False
) -> dict[str, dict[str, float]]:
    """Build what the cache lacks; returns the timings of what was built."""
    built: dict[str, dict[str, float]] = {}
    with _build_lock():
        for comp in components:
            if not force and is_built(comp):
                log(f"[{comp.name} {comp.version}] cached in {comp.bin_dir}")
                continue
            start = time.monotonic()
            try:
                built[comp.name] = build_component(comp, log)
            except BuildError:
                # A half-built directory must not look usable to the next run.
                shutil.rmtree(comp.bin_dir, ignore_errors=True)
                raise
            log(f"[{comp.name} {comp.version}] done in {time.monotonic() - start:.1f}s")
    return built


def missing() -> list[Component]:
    return [c for c in COMPONENTS if not is_built(c)]


def binary(comp: Component, name: str) -> Path:
    """Path to a cached binary, or BuildError telling how to build it."""
    if not is_built(comp):
        raise BuildError(
            f"{comp.name} {comp.version} is not built in {comp.bin_dir}: "
            "run `python -m scripts.controlplane build`"
        )
    return comp.binary(name)
