"""The metrics-server image, from the binary built from its release (``scripts.controlplane``).

metrics-server scrapes kubelets and is reached by the API server's aggregation
layer at a Service's endpoint, which cannot be a loopback address: on the test
control plane it runs as a pod on the real node, and no registry can be pulled
from here. Its release image is the static binary on a distroless base; this one
is the same binary alone (it needs no file of a base: in-cluster credentials and
its serving certificate are mounted), as the pause image is built.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from scripts import gobuild
from scripts.gobuild import Component, Log

from . import builder
from .cache import Hasher

BINARY = "metrics-server"
METRICS_SERVER_FORMAT = 1  # bump when the recipe below changes in a way its text does not show
BUILD_HOW = "python -m scripts.controlplane build"

# As its release image runs it (nonroot), minus the base.
CONTAINERFILE = """\
FROM scratch
COPY metrics-server /metrics-server
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
"""


def _component() -> Component:
    # Here, not at the top: scripts.controlplane imports this package (the pause image).
    from scripts.controlplane.components import METRICS_SERVER

    return METRICS_SERVER


def _binary() -> Path:
    return gobuild.binary(_component(), BINARY, BUILD_HOW)


def input_hash() -> str:
    """The binary's bytes: a rebuild of the binary (a version bump) makes a new image."""
    digest = hashlib.sha256()
    with _binary().open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return (
        Hasher("metrics-server")
        .text("format", str(METRICS_SERVER_FORMAT))
        .text("version", _component().version)
        .text("binary", digest.hexdigest())
        .text("containerfile", CONTAINERFILE)
        .hexdigest()
    )


def build(ref: str, log_file: Path, log: Log) -> str:
    """Build the image tagged ``ref``; returns its image ID."""
    start = time.monotonic()
    image_id = builder.bud_files(
        "metrics-server",
        containerfile=CONTAINERFILE,
        fill=lambda context: shutil.copy2(_binary(), context / BINARY),
        ref=ref,
        log_file=log_file,
    )
    log(f"[metrics-server] built {ref} in {time.monotonic() - start:.1f}s")
    return image_id
