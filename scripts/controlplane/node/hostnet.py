"""The real node's network on this machine: one bridge, pods on it, nothing routed off it.

The bridge is made here with its address, not by the CNI bridge plugin: as a
gateway (``isGateway``) the plugin would also switch IP forwarding on, and this
machine keeps forwarding off. Pods get a route to the pod subnet (on the
bridge) and one to the service range through the bridge's address; no default
route. What reaches the host's own addresses (the API server relay, kubelet)
is delivered locally; nothing is forwarded anywhere.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.controlplane.flags import SERVICE_CIDR

from .errors import NodeError

BRIDGE = "pingpod0"
NODE_SUBNET = "10.244.128.0/24"
NODE_IP = "10.244.128.1"  # the bridge's address: the node's InternalIP and pods' next hop
NODE_PREFIX = 24
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_NETWORK = "pingpod"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def run(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{BRIDGE}").exists()


def create_bridge() -> None:
    """The bridge with the node's address, up; an existing one means another node runs."""
    if bridge_exists():
        raise NodeError(
            f"the bridge {BRIDGE} already exists: a real node is running (one per machine); "
            "stop it with `python -m scripts.controlplane down`"
        )
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    try:
        run("ip", "addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
    except NodeError:
        delete_bridge()
        raise


def delete_bridge() -> None:
    """Gone with it: its address, its route, and any veth still enslaved to it."""
    if bridge_exists():
        run("ip", "link", "delete", BRIDGE, "type", "bridge")


def cni_conflist(ipam_dir: Path) -> dict[str, Any]:
    """The pod network: the bridge plugin on our bridge, host-local addresses."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                # Not the gateway, no masquerade: the plugin then neither addresses the
                # bridge nor switches forwarding on, and adds no NAT rule.
                "isGateway": False,
                "isDefaultGateway": False,
                "ipMasq": False,
                # A pod reaching itself through a Service comes back over its own port.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": NODE_SUBNET, "rangeStart": "10.244.128.10"}]],
                    "routes": [{"dst": SERVICE_CIDR, "gw": NODE_IP}],
                },
            }
        ],
    }


def write_cni_config(conf_dir: Path, ipam_dir: Path) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / f"10-{CNI_NETWORK}.conflist").write_text(
        json.dumps(cni_conflist(ipam_dir), indent=2) + "\n"
    )


def ip_forward() -> str:
    return IP_FORWARD.read_text().strip()


@dataclass(frozen=True)
class Tables:
    """The nftables tables (family, name) that exist: iptables-nft and kube-proxy
    create the ``ip nat``/``ip filter``/... tables on first use, and only those
    that were not there before the node started are ours to delete."""

    names: frozenset[tuple[str, str]]

    @classmethod
    def now(cls) -> Tables:
        out = run("nft", "-j", "list", "tables")
        items = json.loads(out).get("nftables", [])
        return cls(
            frozenset((t["table"]["family"], t["table"]["name"]) for t in items if "table" in t)
        )

    def to_json(self) -> list[list[str]]:
        return sorted([list(name) for name in self.names])

    @classmethod
    def from_json(cls, data: list[list[str]]) -> Tables:
        return cls(frozenset((family, name) for family, name in data))


def delete_new_tables(before: Tables) -> list[str]:
    """Delete every nftables table made since ``before``; returns their names."""
    gone: list[str] = []
    for family, name in sorted(Tables.now().names - before.names):
        run("nft", "delete", "table", family, name)
        gone.append(f"{family} {name}")
    return gone


IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle", "raw")
# Chain prefixes of kube-proxy, kubelet and the CNI plugins.
NODE_CHAINS = ("KUBE-", "CNI-")


def chains() -> list[list[str]]:
    """Every (command, table, chain) of the node's prefixes that exists now."""
    found: list[list[str]] = []
    for command in IPTABLES:
        for table in TABLES:
            for line in run(command, "-w", "-t", table, "-S", check=False).splitlines():
                name = line.split()[1] if line.startswith("-N ") else ""
                if name.startswith(NODE_CHAINS):
                    found.append([command, table, name])
    return found


def delete_new_chains(before: list[list[str]]) -> list[str]:
    """Delete what kube-proxy's own cleanup left of the node's chains, and every rule
    that jumps to them; chains that were there before the node are left alone."""
    new = [c for c in chains() if c not in before]
    for command, table, name in new:
        for line in run(command, "-w", "-t", table, "-S", check=False).splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and f"-j {name}" in line:
                run(command, "-w", "-t", table, "-D", *words[1:], check=False)
    for command, table, name in new:
        run(command, "-w", "-t", table, "-F", name, check=False)
    for command, table, name in new:
        run(command, "-w", "-t", table, "-X", name, check=False)
    return [f"{command} -t {table} {name}" for command, table, name in new]


def relay_argv(socat: str, port: int) -> list[str]:
    """Pods reach the API server (on loopback) at the node's address, same port.

    The `kubernetes` Service's endpoint is ``NODE_IP:port`` (the API server's
    advertised address); a DNAT to 127.0.0.1 would need ``route_localnet``, a
    kernel setting this machine keeps off, so a relay bound to the bridge's
    address carries the connection to loopback instead.
    """
    return [
        socat,
        f"TCP-LISTEN:{port},bind={NODE_IP},reuseaddr,fork",
        f"TCP:127.0.0.1:{port}",
    ]
