"""buildah (and, for tests, podman) on a private storage under the images cache.

Both tools get the same global ``--root``/``--runroot``, so images built here
are visible to podman and nothing touches the host's default
/var/lib/containers. Our own containers.conf and registries.conf keep host
settings out too: cgroupfs (no systemd on these machines), no event log, and
short names resolve to docker.io, as Docker resolves them. The OCI runtime is runc:
crun 1.8 refuses these machines' hybrid cgroup layout (v1 controllers plus a
cgroup2 hierarchy with hugetlb enabled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from .cache import ImageBuildError, state_dir

# Build containers reach the package registries through this machine's TLS setup,
# so they see the host's CA bundle (read-only, never part of an image).
HOST_CERTS = "/etc/ssl/certs"

_REGISTRIES_CONF = """\
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
"""

_CONTAINERS_CONF = """\
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "{run}/libpod"
static_dir = "{root}/libpod"
volume_path = "{root}/volumes"
image_copy_tmp_dir = "{tmp}"

[network]
network_config_dir = "{root}/networks"
"""


def _storage_flags() -> list[str]:
    return [
        "--root",
        str(state_dir("storage")),
        "--runroot",
        str(state_dir("run")),
        "--storage-driver",
        "overlay",
    ]


def tool_env() -> dict[str, str]:
    """The environment for buildah and podman: our config files, our temp dir."""
    etc, tmp = state_dir("etc"), state_dir("tmp")
    registries, containers = etc / "registries.conf", etc / "containers.conf"
    conf = _CONTAINERS_CONF.format(root=state_dir("storage"), run=state_dir("run"), tmp=tmp)
    for path, text in ((registries, _REGISTRIES_CONF), (containers, conf)):
        if not path.is_file() or path.read_text() != text:
            staged = path.with_name(f".{path.name}.{os.getpid()}")
            staged.write_text(text)
            staged.replace(path)  # atomic: another run may be reading it
    return {
        **os.environ,
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_CONF": str(containers),
        "TMPDIR": str(tmp),
    }


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ImageBuildError(f"{name} is not installed: run `make image-tools` (apt: {package})")
    return path


def buildah_argv(*args: str) -> list[str]:
    return [_tool("buildah", "buildah"), *_storage_flags(), *args]


def podman_argv(*args: str) -> list[str]:
    """podman on the builder's storage (the tests run the images with it)."""
    return [_tool("podman", "podman"), *_storage_flags(), *args]


def run_logged(
    argv: Sequence[str], *, what: str, log_file: Path, cwd: Path | None = None, tool: bool = True
) -> None:
    """Run a long step with its output appended to ``log_file``; fail naming step and log."""
    with log_file.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=tool_env() if tool else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise ImageBuildError(
            f"{what} failed (exit {proc.returncode}); full log: {log_file}\n{tail}"
        )


def query(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """A short command whose output we read (an inspect, a listing)."""
    return subprocess.run(list(argv), env=tool_env(), capture_output=True, text=True, check=False)


def bud(
    *,
    context: Path,
    containerfile: Path,
    tags: Sequence[str],
    what: str,
    log_file: Path,
) -> str:
    """``buildah bud`` with no pulls (bases are local); returns the image ID (sha256:...)."""
    iidfile = state_dir("tmp") / f"{containerfile.name}.{os.getpid()}.iid"
    argv = buildah_argv(
        "bud",
        "--pull=false",
        "--network",
        "host",
        "--layers=false",
        "--runtime",
        _tool("runc", "runc"),
        "--format",
        "docker",
        # Independent stages (the frontend and the Python venv) run side by side.
        "--jobs",
        "2",
        "--volume",
        f"{HOST_CERTS}:{HOST_CERTS}:ro",
        "--iidfile",
        str(iidfile),
        "--file",
        str(containerfile),
    )
    for tag in tags:
        argv += ["--tag", tag]
    run_logged([*argv, str(context)], what=what, log_file=log_file)
    image_id = iidfile.read_text().strip()
    iidfile.unlink()
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def bud_files(
    name: str,
    *,
    containerfile: str,
    fill: Callable[[Path], object],
    ref: str,
    log_file: Path,
) -> str:
    """Build ``ref`` from a throwaway context: ``fill(context)`` puts the files in, then
    ``containerfile`` (text) builds them; the context is removed either way. Returns the
    image ID."""
    context = state_dir("contexts") / name
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    try:
        fill(context)
        (context / "Containerfile").write_text(containerfile)
        return bud(
            context=context,
            containerfile=context / "Containerfile",
            tags=[ref],
            what=f"buildah bud {ref}",
            log_file=log_file,
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)


def image_info(ref: str) -> dict[str, object] | None:
    """``buildah inspect`` of a local image, or None when storage lacks it."""
    proc = query(buildah_argv("inspect", "--type", "image", ref))
    if proc.returncode != 0:
        return None
    return dict(json.loads(proc.stdout))


def image_id(ref: str) -> str | None:
    info = image_info(ref)
    return None if info is None else f"sha256:{info['FromImageID']}"


def image_label(ref: str, label: str) -> str | None:
    info = image_info(ref)
    if info is None:
        return None
    config = info.get("OCIv1")
    labels = (config or {}).get("config", {}).get("Labels") if isinstance(config, dict) else None
    return labels.get(label) if isinstance(labels, dict) else None


def tagged(repository: str) -> dict[str, str]:
    """Every tag of ``repository`` in storage (full reference -> image ID)."""
    proc = query(buildah_argv("images", "--json", "--no-trunc"))
    if proc.returncode != 0 or not proc.stdout.strip():
        return {}
    refs: dict[str, str] = {}
    for entry in json.loads(proc.stdout):
        for name in entry.get("names") or []:
            if name.startswith(f"{repository}:"):
                refs[name] = entry["id"]
    return refs


def untag(refs: Sequence[str], log_file: Path) -> None:
    """Drop old tags; an image that loses its last one is deleted by buildah."""
    if refs:
        run_logged(buildah_argv("rmi", *refs), what="buildah rmi (old tags)", log_file=log_file)


def prune(log_file: Path) -> None:
    """Delete untagged images (an older build of a base keeps no name once rebuilt).
    Best effort: one still used by a container (a test elsewhere) stays for next time."""
    proc = query(buildah_argv("rmi", "--prune"))
    with log_file.open("a") as out:
        out.write(f"\n$ buildah rmi --prune (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")


def settle_storage() -> None:
    """Release the storage after podman: buildah shuts storage down on exit, which
    unmounts the overlay driver's private bind mount of its own directory once no
    layer is mounted any more; podman leaves that mount behind."""
    query(buildah_argv("containers", "--quiet"))


def storage_mounts() -> list[str]:
    """Mount points under our storage (mountinfo field 5), e.g. leftover overlays."""
    root = str(state_dir("storage"))
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4] for line in info]
    return [p for p in points if p == root or p.startswith(root + "/")]


def export_archive(ref: str, archive: Path, *, what: str, log_file: Path) -> None:
    """A docker-archive of ``ref`` whose manifest.json names it in RepoTags."""
    tmp = archive.with_name(f".{archive.name}.tmp")
    tmp.unlink(missing_ok=True)
    run_logged(
        buildah_argv("push", "--quiet", ref, f"docker-archive:{tmp}:{ref}"),
        what=what,
        log_file=log_file,
    )
    tmp.replace(archive)
