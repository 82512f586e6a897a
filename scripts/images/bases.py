"""Stand-ins for the Dockerfiles' base images, made here from packages.

No image registry is reachable, so ``python:3.11-slim`` and
``node:20-bookworm-slim`` are built from a Debian bookworm root filesystem
(mmdebstrap from the apt mirrors this machine uses) and tagged with the names
the Dockerfiles use, which then build unchanged with ``--pull=false``. How they
differ from the official images: docs/images.md.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.gobuild import Log

from . import builder, node
from .cache import Hasher, ImageBuildError, state_dir

# Bump when anything about the bases changes that the texts below do not show.
BASES_FORMAT = 1
SUITE = "bookworm"
RECIPE_LABEL = "io.pingpod.base-recipe"

_MMDEBSTRAP_OPTS = (
    "--variant=minbase",
    "--format=tar",
    '--aptopt=Acquire::Retries "3"',
    # merged /usr as debootstrap (and so Debian's images) set it up: symlinks and the
    # tiny usr-is-merged, not the usrmerge package and the Perl it pulls in.
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    # Like Debian's slim images: no documentation, man pages or translations
    # (written to the image's dpkg.cfg.d too, so later apt installs skip them as well).
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Debian's Python in /usr/bin, made to behave like the official image's for what
# Dockerfiles do with it: `python` on PATH, pip (from Debian's own wheels) allowed
# to install, so `python -m pip ...` and `pip uninstall pip setuptools` work.
_PYTHON_CONTAINERFILE = f"""\
FROM scratch
ADD rootfs.tar /
RUN rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \\
 && ln -s /usr/bin/python3 /usr/local/bin/python \\
 && set -- /usr/share/python-wheels/pip-*.whl \\
 && python3 "$1/pip" install -q --no-cache-dir --no-index --find-links /usr/share/python-wheels \\
      pip setuptools
ENV PATH={_PATH} LANG=C.UTF-8 PYTHON_VERSION=3.11.2
CMD ["python3"]
"""

_NODE_CONTAINERFILE = f"""\
FROM scratch
ADD rootfs.tar /
ADD node.tar /
ENV PATH={_PATH} NODE_VERSION={node.NODE_VERSION} \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
"""


@dataclass(frozen=True)
class Base:
    ref: str  # the name the Dockerfiles use
    packages: tuple[str, ...]  # on top of Debian's minbase variant
    containerfile: str
    extra: str = ""  # other inputs, as text for the hash

    @property
    def key(self) -> str:
        return self.ref.rsplit("/", 1)[-1].replace(":", "-")

    def recipe(self) -> str:
        return (
            Hasher("base")
            .text("format", str(BASES_FORMAT))
            .text("suite", SUITE)
            .text("mmdebstrap", "\n".join(_MMDEBSTRAP_OPTS))
            .text("packages", " ".join(self.packages))
            .text("containerfile", self.containerfile)
            .text("extra", self.extra)
            .hexdigest()
        )


PYTHON = Base(
    "docker.io/library/python:3.11-slim",
    ("python3", "python3-venv", "python-is-python3", "ca-certificates"),
    _PYTHON_CONTAINERFILE,
)
NODE = Base("docker.io/library/node:20-bookworm-slim", (), _NODE_CONTAINERFILE, node.recipe())
BASES = (PYTHON, NODE)


def used_by(dockerfile: str) -> tuple[Base, ...]:
    """The stand-ins a Dockerfile's FROM lines name (short names as Docker resolves them)."""
    names, stages = set(), {"scratch"}
    pattern = r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?"
    for match in re.finditer(pattern, dockerfile, re.MULTILINE | re.IGNORECASE):
        name, stage = match.group(1), match.group(2)
        if name.lower() not in stages:
            name = name if "/" in name else f"library/{name}"
            names.add(name if name.count("/") > 1 else f"docker.io/{name}")
        if stage:
            stages.add(stage.lower())
    missing = names - {base.ref for base in BASES}
    if missing:
        raise ImageBuildError(
            f"no stand-in base for {sorted(missing)}: nothing can be pulled here; "
            "add one to scripts/images/bases.py"
        )
    return tuple(base for base in BASES if base.ref in names)


def recipes(used: tuple[Base, ...]) -> str:
    """One hash over the recipes of the bases an image is built on: one of its inputs."""
    return Hasher("bases").text("used", " ".join(b.recipe() for b in used)).hexdigest()


def debian_sources(root: Path = Path("/etc/apt")) -> list[str]:
    """One-line apt sources for the suite, from the mirrors this machine's apt uses."""
    mirrors: dict[str, str] = {}  # suite -> URI
    texts = [p.read_text() for p in sorted(root.glob("sources.list.d/*.sources"))]
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
            for suite in fields.get("Suites", "").split():
                if suite.startswith(SUITE) and "URIs" in fields:
                    mirrors.setdefault(suite, fields["URIs"].split()[0])
    one_line = [root / "sources.list", *sorted(root.glob("sources.list.d/*.list"))]
    for path in (p for p in one_line if p.is_file()):
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", path.read_text(), re.M):
            if match.group(2).startswith(SUITE):
                mirrors.setdefault(match.group(2), match.group(1))
    mirrors.setdefault(SUITE, "http://deb.debian.org/debian")
    mirrors.setdefault(f"{SUITE}-security", "http://deb.debian.org/debian-security")
    wanted = (SUITE, f"{SUITE}-updates", f"{SUITE}-security")
    return [f"deb {mirrors[s]} {s} main" for s in wanted if s in mirrors]


def _rootfs(base: Base, log_file: Path, log: Log) -> Path:
    """A minbase root filesystem tarball with the base's packages (kept for rebuilds)."""
    rootfs_dir = state_dir("rootfs")
    tar = rootfs_dir / f"{base.key}-{base.recipe()[:12]}.tar"
    if tar.is_file():
        return tar
    for old in rootfs_dir.glob(f"{base.key}-*.tar"):
        old.unlink()
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed: run `make image-tools`")
    start = time.monotonic()
    log(f"[{base.key}] mmdebstrap {SUITE} minbase {' '.join(base.packages)}")
    tmp = rootfs_dir / f".{tar.name}.tmp"
    argv = ["mmdebstrap", *_MMDEBSTRAP_OPTS]
    if base.packages:
        argv.append(f"--include={','.join(base.packages)}")
    builder.run_logged(
        [*argv, SUITE, str(tmp), *debian_sources()],
        what=f"mmdebstrap for {base.ref}",
        log_file=log_file,
        tool=False,
    )
    tmp.replace(tar)
    size = tar.stat().st_size >> 20
    log(f"[{base.key}] root filesystem in {time.monotonic() - start:.1f}s ({size} MB)")
    return tar


def _build(base: Base, log: Log) -> None:
    log_file = state_dir("logs") / f"base-{base.key}.log"
    log_file.write_text("")
    context = state_dir("contexts") / f"base-{base.key}"
    context.mkdir(exist_ok=True)
    rootfs = _rootfs(base, log_file, log)
    for stale in context.iterdir():
        stale.unlink()
    (context / "rootfs.tar").hardlink_to(rootfs)
    if base is NODE:
        node.overlay_tar(node.fetch(log_file), context / "node.tar")
    containerfile = context / "Containerfile"
    containerfile.write_text(f"{base.containerfile}LABEL {RECIPE_LABEL}={base.recipe()}\n")
    start = time.monotonic()
    builder.bud(
        context=context,
        containerfile=containerfile,
        tags=[base.ref],
        what=f"buildah bud {base.ref} (stand-in base)",
        log_file=log_file,
    )
    for stale in context.iterdir():
        stale.unlink()
    log(f"[{base.key}] stand-in {base.ref} built in {time.monotonic() - start:.1f}s")


def ensure_bases(used: tuple[Base, ...], log: Log) -> None:
    """Build each of ``used`` whose recipe label differs from its recipe now."""
    for base in used:
        if builder.image_label(base.ref, RECIPE_LABEL) != base.recipe():
            try:
                _build(base, log)
            except OSError as exc:
                raise ImageBuildError(f"stand-in base {base.ref}: {exc}") from exc
            builder.prune(state_dir("logs") / f"base-{base.key}.log")
