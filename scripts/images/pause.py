"""The pod sandbox ("pause") image, from Kubernetes' own source.

kubelet's CRI runtime starts every pod with a pause container, and no registry
can be pulled from here. Kubernetes builds its image from one C file
(build/pause/linux/pause.c): compiled statically, it is the whole image. The
source comes from the Go module cache, at the Kubernetes version the control
plane is built from, so it is covered by that module's go.sum hash.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from scripts.gobuild import Log, module_version, run_go

from . import builder
from .cache import Hasher, ImageBuildError

# The tag Kubernetes' build/pause/Makefile gives this source, and the sandbox image
# containerd 2.x and kubeadm 1.36 name by default: the node configuration can use it as is.
PAUSE_VERSION = "3.10.2"
PAUSE_IMAGE = f"registry.k8s.io/pause:{PAUSE_VERSION}"
PAUSE_FORMAT = 1  # bump when the recipe below changes in a way its text does not show

K8S_WRAPPER = Path(__file__).resolve().parents[1] / "controlplane" / "build" / "k8s"
K8S_MODULE = "k8s.io/kubernetes"
# As build/pause/Makefile compiles it (CFLAGS), then stripped as it is there.
CFLAGS = ("-Os", "-Wall", "-Werror", "-static")

# build/pause/Dockerfile with its BASE (scratch) and the binary's name filled in.
CONTAINERFILE = """\
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""


def k8s_version() -> str:
    return module_version(K8S_WRAPPER / "go.mod", K8S_MODULE)


def input_hash() -> str:
    """The module version pins pause.c (go.sum): no download is needed to know the hash."""
    return (
        Hasher("pause")
        .text("format", str(PAUSE_FORMAT))
        .text("image", PAUSE_IMAGE)
        .text("k8s", k8s_version())
        .text("cflags", " ".join(CFLAGS))
        .text("containerfile", CONTAINERFILE)
        .hexdigest()
    )


def _source_dir(log_file: Path) -> Path:
    version = k8s_version()
    out = run_go(
        ["mod", "download", "-json", f"{K8S_MODULE}@{version}"],
        cwd=K8S_WRAPPER,
        log_file=log_file,
        what=f"go mod download {K8S_MODULE}@{version}",
    )
    return Path(json.loads(out)["Dir"]) / "build" / "pause"


def _compile(source: Path, out: Path, log_file: Path) -> None:
    makefile = (source / "Makefile").read_text()
    tag = re.search(r"^TAG \?= (\S+)", makefile, re.MULTILINE)
    if tag is None or tag.group(1) != PAUSE_VERSION:
        found = tag.group(1) if tag else "none"
        raise ImageBuildError(
            f"{source / 'Makefile'} builds pause {found}, PAUSE_VERSION is {PAUSE_VERSION}: "
            "update PAUSE_VERSION in scripts/images/pause.py"
        )
    for tool in ("gcc", "strip"):
        if shutil.which(tool) is None:
            raise ImageBuildError(f"{tool} is not installed: run `make image-tools`")
    version = f"-DVERSION=v{PAUSE_VERSION}-{k8s_version()}"
    steps = (
        ["gcc", *CFLAGS, version, "-o", str(out), str(source / "linux" / "pause.c")],
        ["strip", str(out)],
    )
    for argv in steps:
        builder.run_logged(argv, what=f"{argv[0]} pause", log_file=log_file, tool=False)
    proc = subprocess.run([str(out), "-v"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or f"v{PAUSE_VERSION}" not in proc.stdout:
        raise ImageBuildError(f"the compiled pause does not run: {proc.stdout}{proc.stderr}")


def build(log_file: Path, log: Log) -> str:
    """Compile pause.c and build the image tagged PAUSE_IMAGE; returns its image ID."""
    start = time.monotonic()

    def fill(context: Path) -> None:
        log(f"[pause] compiling pause.c from {K8S_MODULE}@{k8s_version()}")
        _compile(_source_dir(log_file), context / "pause", log_file)

    image_id = builder.bud_files(
        "pause", containerfile=CONTAINERFILE, fill=fill, ref=PAUSE_IMAGE, log_file=log_file
    )
    log(f"[pause] built in {time.monotonic() - start:.1f}s")
    return image_id
