"""What /proc says about a running server, read from outside it: its child
processes, open file descriptors and sockets, resident memory, the TCP bytes it
has queued, and the processes that carry a marker in their environment (Linux
only)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children of children too)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in task.read_text().split():
                    found.add(int(child))
                    frontier.append(int(child))
    return found


def open_fds(pid: int) -> list[str]:
    """What each open descriptor points at (`socket:[…]`, `pipe:[…]`, a path, …)."""
    found: list[str] = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed between listing and reading
            found.append(os.readlink(fd))
    return sorted(found)


def sockets(pid: int) -> int:
    return sum(1 for target in open_fds(pid) if target.startswith("socket:"))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tcp_send_queue(local_port: int, remote_port: int) -> int | None:
    """Bytes queued for sending on the loopback TCP socket local_port -> remote_port
    (IPv4), None if there is no such socket: how far a peer that does not read has
    pushed back on the sender."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return int(queues.split(":")[0], 16)
    return None


def with_environ(key: str, value: str) -> list[int]:
    """Live processes whose environment holds `key=value` (a marker that survives
    reparenting, unlike the process tree)."""
    marker = f"{key}={value}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours to read
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return sorted(found)
