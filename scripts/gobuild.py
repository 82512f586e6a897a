"""Build pinned Go binaries from source into a version-keyed cache.

Only the Go toolchain and the Go module proxy are needed. A component is a
wrapper Go module in this repository (``go.mod`` with a complete ``go.sum``)
and the binaries built from it. Builds run with ``-mod=readonly``, so the
checksum database is never consulted: every downloaded module is checked
against the committed hashes instead.

Binaries land in ``<cache>/bin/<name>-<version>/`` with a ``.build.json`` stamp
holding a fingerprint of the inputs; a changed fingerprint means a rebuild.
Used by ``scripts.controlplane`` (etcd, Kubernetes, kwok) and ``scripts.engine``
(the Pulumi CLI and the Kubernetes provider).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the way binaries are built changes, so cached builds are redone.
BUILD_FORMAT = 1
STAMP = ".build.json"

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """A build step failed; the message says which and where the full log is."""


def cache_root() -> Path:
    """``$PINGPOD_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/pingpod``."""
    explicit = os.environ.get("PINGPOD_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pingpod"


def module_version(go_mod: Path, module: str) -> str:
    """The version ``go_mod`` requires of ``module`` (a require line, in or out of a block)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod.read_text())
    if match is None:
        raise LookupError(f"{go_mod} does not require {module}")
    return match.group(1)


@dataclass(frozen=True)
class Origin:
    """Where a module version comes from, per the module proxy."""

    version: str  # the release version the binaries report (see Component.release)
    commit: str
    time: str
    dir: Path  # the module's read-only copy in the module cache


def _no_flags(_: Origin) -> list[str]:
    return []


@dataclass(frozen=True)
class Component:
    """A wrapper module and the binaries built from it."""

    name: str
    module: str  # the module whose version names the build
    module_dir: Path  # the wrapper module (go.mod, go.sum)
    binaries: tuple[tuple[str, str], ...]  # (binary name, Go main package)
    # Extra -ldflags, typically -X version stamps, from the module's origin.
    ldflags: Callable[[Origin], list[str]] = _no_flags
    # Runs before the binaries are built, given a scratch copy of the wrapper module
    # and the build log; for packages that must be generated before they compile.
    prepare: Callable[[Origin, Path, Path], None] | None = None
    # The release a pseudo-version stands for (a module with no tags of its own).
    release: str | None = None
    # `go mod download` of the whole module graph first. Off where the graph holds a
    # pseudo-version whose .info the proxy refuses: `go build` needs only its zip.
    download_all: bool = True
    # Extra files whose content is part of the build's inputs.
    inputs: tuple[Path, ...] = field(default=())
    # Files of the module (paths inside it) copied beside the binaries, by base name:
    # what running them needs from the release (CRDs), without the module cache.
    files: tuple[str, ...] = ()
    # GOTOOLCHAIN for this component only (e.g. "go1.27.3"), for a module that asks for a
    # newer Go than the one on PATH: go fetches that toolchain through the module proxy.
    toolchain: str | None = None

    @property
    def go_env(self) -> dict[str, str]:
        """The environment its go commands add to ``go_env()``."""
        return {"GOTOOLCHAIN": self.toolchain} if self.toolchain else {}

    @property
    def version(self) -> str:
        return self.release or module_version(self.module_dir / "go.mod", self.module)

    @property
    def bin_dir(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.version}"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def file(self, path: str) -> Path:
        """Where the copy of ``path`` (one of ``files``) is."""
        return self.bin_dir / Path(path).name


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
            "go.mod files under scripts/ ask for) and retry"
        )
    return go


def run_go(
    args: list[str],
    *,
    cwd: Path,
    log_file: Path,
    what: str,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``go args...``, appending its output to ``log_file``; raise BuildError on failure."""
    argv = [_go(), *args]
    with log_file.open("a") as out:
        out.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
        out.flush()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env={**go_env(), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        out.write(proc.stdout)
        out.write(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {proc.returncode}); full log: {log_file}\n{tail}")
    return proc.stdout


def _origin(comp: Component, log_file: Path) -> Origin:
    """The component's release per the module proxy's metadata."""
    module_version_ = module_version(comp.module_dir / "go.mod", comp.module)
    out = run_go(
        ["mod", "download", "-json", f"{comp.module}@{module_version_}"],
        cwd=comp.module_dir,
        log_file=log_file,
        what=f"go mod download {comp.module}@{module_version_}",
        env=comp.go_env,
    )
    meta = json.loads(out)
    tag_time = ""
    info = meta.get("Info")
    if info and Path(info).is_file():
        tag_time = str(json.loads(Path(info).read_text()).get("Time", ""))
    return Origin(
        version=comp.version,
        commit=str(meta.get("Origin", {}).get("Hash", "")),
        time=tag_time,
        dir=Path(str(meta.get("Dir", ""))),
    )


def fingerprint(comp: Component) -> str:
    """Changes whenever the inputs of a build change (module files, binaries, build format)."""
    digest = hashlib.sha256(f"{BUILD_FORMAT}:{comp.binaries}".encode())
    # Only when set: the fingerprints (and so the cached builds) of the others stay as they were.
    for extra in (comp.release, comp.toolchain, " ".join(comp.files)):
        if extra:
            digest.update(extra.encode())
    for path in (comp.module_dir / "go.mod", comp.module_dir / "go.sum", *comp.inputs):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp(comp: Component) -> dict[str, object]:
    """The recorded build stamp, or {} when there is none."""
    path = comp.bin_dir / STAMP
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def is_built(comp: Component) -> bool:
    return (
        stamp(comp).get("fingerprint") == fingerprint(comp)
        and all(comp.binary(name).is_file() for name, _ in comp.binaries)
        and all(comp.file(path).is_file() for path in comp.files)
    )


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (created if need be) for the block: serialises
    builds between concurrent runs (two test sessions, CLI and pytest)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go_version(comp: Component) -> str:
    return subprocess.run(
        [_go(), "version"],
        cwd=comp.module_dir,
        capture_output=True,
        text=True,
        check=True,
        env={**go_env(), **comp.go_env},
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
    if comp.download_all:
        log(f"[{comp.name} {comp.version}] downloading modules (go mod download)")
        run_go(
            ["mod", "download"],
            cwd=comp.module_dir,
            log_file=log_file,
            what="go mod download",
            env=comp.go_env,
        )
    origin = _origin(comp, log_file)
    timings["download"] = time.monotonic() - start
    ldflags = " ".join(["-s", "-w", *comp.ldflags(origin)])

    work_dir = comp.module_dir
    if comp.prepare is not None:
        # A scratch copy of the wrapper module: the checkout stays untouched.
        start = time.monotonic()
        work_dir = cache_root() / "work" / f"{comp.name}-{comp.version}"
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(comp.module_dir / name, work_dir / name)
        log(f"[{comp.name} {comp.version}] preparing sources")
        comp.prepare(origin, work_dir, log_file)
        timings["prepare"] = time.monotonic() - start

    for name, package in comp.binaries:
        start = time.monotonic()
        log(f"[{comp.name} {comp.version}] building {name}")
        tmp = comp.bin_dir / f".{name}.tmp"
        run_go(
            ["build", "-ldflags", ldflags, "-o", str(tmp), package],
            cwd=work_dir,
            log_file=log_file,
            what=f"go build {package}",
            env=comp.go_env,
        )
        tmp.replace(comp.binary(name))
        timings[name] = time.monotonic() - start
        log(f"[{comp.name} {comp.version}] built {name} in {timings[name]:.1f}s")

    for path in comp.files:
        shutil.copyfile(origin.dir / path, comp.file(path))

    record = {
        "fingerprint": fingerprint(comp),
        "module": comp.module,
        "module_version": module_version(comp.module_dir / "go.mod", comp.module),
        "version": comp.version,
        "commit": origin.commit,
        "go": _go_version(comp),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (comp.bin_dir / STAMP).write_text(json.dumps(record, indent=2) + "\n")
    if work_dir != comp.module_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    return timings


def ensure_built(
    components: Iterable[Component], *, log: Log = print, force: bool = False
) -> dict[str, dict[str, float]]:
    """Build what the cache lacks; returns the timings of what was built.

    One lock per component, taken only when it must be built: a run that finds
    everything cached never waits, and a background build of one component
    (``scripts/prebuild.py``) holds up only a run that needs that one.
    """
    built: dict[str, dict[str, float]] = {}
    for comp in components:
        if not force and is_built(comp):
            log(f"[{comp.name} {comp.version}] cached in {comp.bin_dir}")
            continue
        with file_lock(cache_root() / "bin" / f".lock-{comp.name}-{comp.version}"):
            if not force and is_built(comp):  # built by whoever held the lock
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


def binary(comp: Component, name: str, how: str) -> Path:
    """Path to a cached binary, or BuildError saying to run ``how``."""
    if not is_built(comp):
        raise BuildError(f"{comp.name} {comp.version} is not built in {comp.bin_dir}: run `{how}`")
    return comp.binary(name)


def build_command(what: str, build: Callable[[], dict[str, dict[str, float]]], log: Log) -> bool:
    """Run ``build`` for a command line: log the seconds per step, or print the failure."""
    start = time.monotonic()
    try:
        built = build()
    except BuildError as exc:
        print(f"{what} build FAILED: {exc}", file=sys.stderr)
        return False
    for name, timings in built.items():
        log(f"{name}: " + ", ".join(f"{step} {secs:.1f}s" for step, secs in timings.items()))
    log(f"build finished in {time.monotonic() - start:.1f}s")
    return True
