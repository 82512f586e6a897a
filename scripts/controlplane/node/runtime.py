"""The real node's container runtime: containerd 2.x (CRI) with runc, all state under
the node's directory.

containerd 2.x rather than Debian's 1.6: kubelet 1.36 asks the runtime for its
cgroup driver (the CRI ``RuntimeConfig`` call), which 1.6 does not implement.
Debian's runc runs the containers; the CNI plugins are Debian's too.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.images import PAUSE_IMAGE  # the sandbox image: made here, never pulled

from .errors import NodeError
from .hostnet import CNI_BIN_DIR

NAMESPACE = "k8s.io"  # containerd's namespace for CRI images and containers
# Plugins that would put state outside the node's directory (/opt/containerd,
# /var/run/nri) or need what this machine lacks; none is used by the CRI path here.
DISABLED_PLUGINS = (
    "io.containerd.nri.v1.nri",
    "io.containerd.internal.v1.opt",
    "io.containerd.image-verifier.v1.bindir",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.blockfile",
    "io.containerd.snapshotter.v1.erofs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


@dataclass(frozen=True)
class RuntimePaths:
    """Everything containerd writes, under one directory."""

    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "config.toml"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def runc_root(self) -> Path:
        return self.dir / "runc"

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def endpoint(self) -> str:
        """What kubelet's ``containerRuntimeEndpoint`` takes."""
        return f"unix://{self.socket}"


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def config_toml(paths: RuntimePaths, *, cni_conf_dir: Path, runc: str) -> str:
    return f"""\
version = 3
root = '{paths.root}'
state = '{paths.state}'
disabled_plugins = {_toml_list(DISABLED_PLUGINS)}

[grpc]
  address = '{paths.socket}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{PAUSE_IMAGE}'

[plugins.'io.containerd.cri.v1.runtime']
  # Without CAP_SYS_RESOURCE (this VM) runc cannot lower a sandbox's
  # oom_score_adj below containerd's own: clamp to it instead of failing.
  restrict_oom_score_adj = true
  # Network namespaces (and their mounts) under the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  # cgroup v1 here has no hugetlb hierarchy mounted.
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{runc}'
        Root = '{paths.runc_root}'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = {_toml_list([str(CNI_BIN_DIR)])}
    conf_dir = '{cni_conf_dir}'
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
"""


def write_config(paths: RuntimePaths, *, cni_conf_dir: Path) -> None:
    runc = shutil.which("runc")
    if runc is None:
        raise NodeError("runc is not installed (apt-get install runc)")
    paths.dir.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_toml(paths, cni_conf_dir=cni_conf_dir, runc=runc))


def containerd_argv(binary: Path, paths: RuntimePaths) -> list[str]:
    return [str(binary), f"--config={paths.config}", "--log-level=warn"]


def import_image(ctr: Path, paths: RuntimePaths, archive: Path) -> None:
    """Import an image archive into the CRI namespace, where kubelet looks for images."""
    argv = [
        str(ctr),
        f"--address={paths.socket}",
        f"--namespace={NAMESPACE}",
        "images",
        "import",
        "--no-unpack=false",
        str(archive),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NodeError(f"ctr images import {archive} failed: {proc.stderr.strip()}")


def list_images(ctr: Path, paths: RuntimePaths) -> list[str]:
    argv = [str(ctr), f"--address={paths.socket}", f"--namespace={NAMESPACE}", "images", "ls", "-q"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NodeError(f"ctr images ls failed: {proc.stderr.strip()}")
    return proc.stdout.split()
