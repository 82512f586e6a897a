"""What a real node could leave behind on this machine, read from the kernel and the
filesystem, so that a test can compare the host before ``up`` and after ``down``."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.controlplane.node.host import HOST_PATHS, hierarchies

# Kernel settings a node could touch: kubelet's tunables, forwarding, kube-proxy's.
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)
PROCESS_NAMES = (
    "containerd",
    "containerd-shim",  # /proc/<pid>/comm is cut to 15 characters
    "kubelet",
    "kube-proxy",
    "socat",
    "pause",
    "runc",
)


def _out(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def _links() -> list[str]:
    # Name and kind only: counters, flags and MAC addresses of lasting links may change.
    return sorted(
        f"{link['ifname']} {link.get('linkinfo', {}).get('info_kind', '')}"
        for link in json.loads(_out("ip", "-d", "-j", "link", "show"))
    )


def _addresses() -> list[str]:
    return sorted(
        f"{link['ifname']} {a['local']}/{a['prefixlen']}"
        for link in json.loads(_out("ip", "-j", "addr", "show"))
        for a in link.get("addr_info", [])
    )


def _routes() -> list[str]:
    return sorted(_out("ip", "route", "show", "table", "all").splitlines())


def _mounts() -> list[str]:
    return sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())


def _cgroups() -> list[str]:
    # Top two levels of every hierarchy: where kubelet, runc and containerd create theirs.
    found: list[str] = []
    for root in hierarchies():
        for path in root.glob("*/"):
            found.append(str(path))
            found += [str(p) for p in path.glob("*/")]
    return sorted(found)


def _sysctls() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in SYSCTLS:
        path = Path("/proc/sys", name)
        values[name] = path.read_text().strip() if path.exists() else "(absent)"
    return values


def _processes() -> list[str]:
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if any(comm.startswith(name) for name in PROCESS_NAMES):
            found.append(comm)
    return sorted(found)


def _nft_ruleset() -> str:
    # Handles renumber; rules and chains are what matter.
    return re.sub(r" # handle \d+", "", _out("nft", "list", "ruleset"))


@dataclass(frozen=True)
class HostState:
    links: list[str]
    addresses: list[str]
    routes: list[str]
    netns: list[str]
    nft: str
    mounts: list[str]
    cgroups: list[str]
    sysctls: dict[str, str]
    paths: dict[str, bool]
    processes: list[str]

    @classmethod
    def read(cls) -> HostState:
        return cls(
            links=_links(),
            addresses=_addresses(),
            routes=_routes(),
            netns=sorted(_out("ip", "netns", "list").splitlines()),
            nft=_nft_ruleset(),
            mounts=_mounts(),
            cgroups=_cgroups(),
            sysctls=_sysctls(),
            paths={str(p): p.exists() for p in HOST_PATHS},
            processes=_processes(),
        )

    def differences(self, other: HostState) -> dict[str, object]:
        """Field by field, what differs between ``self`` (before) and ``other`` (after):
        for lists, what is gone and what is new."""
        found: dict[str, object] = {}
        for name, before in vars(self).items():
            after = getattr(other, name)
            if after == before:
                continue
            if isinstance(before, list) and isinstance(after, list):
                found[name] = {
                    "gone": sorted(set(before) - set(after)),
                    "new": sorted(set(after) - set(before)),
                }
            else:
                found[name] = (before, after)
        return found
