"""What a real node makes on the host outside its directory, and taking it all away.

The node's cgroup subtree (``CGROUP_ROOT`` in every hierarchy), the container
processes in it, the runc shims, the mounts under the node's directory (overlay
root filesystems, network namespaces, kubelet's volumes), and a few fixed paths
that containerd, kubelet and iptables create (recorded as absent before the node
started, so only what the node made is removed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .errors import NodeError
from .kubelet import CGROUP_ROOT

CGROUP_MOUNT = Path("/sys/fs/cgroup")
# Created by containerd (shim sockets), kubelet (log symlinks) and iptables (its lock).
# Where a real node keeps its state: one per machine, so one fixed place, and a short
# one (kubelet and containerd put unix sockets under it: at most 104 bytes a path).
NODE_DIR = Path("/var/lib/pingpod-node")
HOST_PATHS = (
    NODE_DIR,
    Path("/run/containerd"),
    Path("/var/log/containers"),
    Path("/run/xtables.lock"),
    Path("/var/run/netns"),
    Path("/etc/cni"),
    Path("/opt/cni"),
    Path("/var/lib/kubelet"),
    Path("/var/lib/containerd"),
)


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, named, and the unified one)."""
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        mountpoint = Path(left.split()[4])
        if fstype in ("cgroup", "cgroup2") and mountpoint.is_relative_to(CGROUP_MOUNT):
            found.append(mountpoint)
    return found


def node_cgroups() -> list[Path]:
    return [h / CGROUP_ROOT.lstrip("/") for h in hierarchies()]


def pods_cpu_seconds() -> float | None:
    """CPU time of every container on the node so far (cgroup v1 ``cpuacct.usage`` of
    its cgroup root); None when there is no such cgroup (no node, or cgroup v2)."""
    for path in node_cgroups():
        usage = path / "cpuacct.usage"
        if usage.exists():
            return int(usage.read_text()) / 1e9
    return None


def create_cgroups() -> None:
    """kubelet's ``cgroupRoot``, which it expects to exist, in every hierarchy."""
    for path in node_cgroups():
        path.mkdir(exist_ok=True)
        # A new v1 cpuset starts with no CPUs and no memory nodes: give it the parent's.
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (path / name).exists():
                (path / name).write_text((path.parent / name).read_text())


def _cgroup_pids(root: Path) -> set[int]:
    pids: set[int] = set()
    for procs in root.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in procs.read_text().split())
    return pids


def kill_cgroup_processes(timeout: float = 10.0) -> int:
    """SIGKILL every process in the node's cgroups (the containers); how many there were."""
    roots = [p for p in node_cgroups() if p.exists()]
    first = set().union(*(_cgroup_pids(r) for r in roots)) if roots else set()
    deadline = time.monotonic() + timeout
    while True:
        pids = set().union(*(_cgroup_pids(r) for r in roots)) if roots else set()
        if not pids:
            return len(first)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise NodeError(f"container processes outlived SIGKILL: {sorted(pids)}")
        time.sleep(0.05)


def remove_cgroups() -> None:
    """rmdir the node's cgroup subtrees, deepest first (cgroupfs has no recursive remove)."""
    for root in node_cgroups():
        if not root.exists():
            continue
        dirs = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*dirs, root]:
            with contextlib.suppress(FileNotFoundError):
                path.rmdir()


def kill_shims(socket: Path, timeout: float = 10.0) -> int:
    """SIGKILL the runc shims of this node's containerd (they outlive containerd on
    purpose) and wait until they are gone; how many there were."""
    pids: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            pids.append(int(proc.name))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    # Reaped by init, which may take a moment after the kill.
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            raise NodeError(f"runc shims outlived SIGKILL: {pids}")
        time.sleep(0.05)
    return len(pids)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or under ``directory``, deepest first."""
    points: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Octal escapes (\040 for a space) as the kernel writes them.
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == directory or point.is_relative_to(directory):
            points.append(point)
    return sorted(points, key=lambda p: -len(p.parts))


def unmount_all(directory: Path) -> None:
    """Unmount everything under ``directory``; a busy mount is detached (lazily)."""
    for _ in range(5):  # a shared mount can show up again through propagation
        points = mounts_under(directory)
        if not points:
            return
        for point in points:
            proc = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if proc.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    left = mounts_under(directory)
    if left:
        raise NodeError(f"still mounted after teardown: {', '.join(map(str, left))}")


def make_shared_mount(directory: Path) -> None:
    """``directory`` as a mount point of its own in a shared peer group."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    subprocess.run(["mount", "--make-shared", str(directory)], check=True)


def absent_paths() -> list[str]:
    """Which of ``HOST_PATHS`` do not exist now (recorded before the node starts)."""
    return [str(p) for p in HOST_PATHS if not p.exists() and not p.is_symlink()]


def remove_paths(absent_before: list[str]) -> list[str]:
    """Remove what the node created among ``HOST_PATHS``; returns what was removed."""
    removed: list[str] = []
    for name in absent_before:
        path = Path(name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed
