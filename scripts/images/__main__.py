"""python -m scripts.images build [--force] | refs

Both end with one line per application image, ``image echo=REF`` then
``image provisioner=REF``: other checks read those lines, so they stay last
and keep that form. Progress, archives and the pause image come before them.
"""

from __future__ import annotations

import argparse
import sys
import time

from scripts.gobuild import BuildError

from .build import APP_IMAGES, Image, built_images, ensure_images


def _log(msg: str) -> None:
    print(msg, flush=True)


def _summary(images: dict[str, Image]) -> None:
    for image in images.values():
        _log(f"archive {image.name}={image.archive}")
    _log(f"sandbox pause={images['pause'].ref}")
    for name in APP_IMAGES:
        _log(f"image {name}={images[name].ref}")


def _import_into_node(images: dict[str, Image], directory: str | None) -> bool:
    """Import into the real node of the control plane in ``directory`` (default: the
    one ``make cluster-up`` starts), when one runs: no registry, so this is the way
    the node gets them."""
    from scripts.controlplane import ControlPlane, ControlPlaneError

    try:
        cp = ControlPlane.attach(directory)
    except ControlPlaneError:
        return True
    if cp.node is None or not cp.running():
        return True
    start = time.monotonic()
    try:
        for image in images.values():
            cp.node.import_image(image.archive)
    except ControlPlaneError as exc:
        print(f"images import FAILED: {exc}", file=sys.stderr)
        return False
    _log(f"imported into the real node of {cp.dir} in {time.monotonic() - start:.1f}s")
    return True


def cmd_build(args: argparse.Namespace) -> int:
    start = time.monotonic()
    try:
        images = ensure_images(log=_log, force=args.force)
    except BuildError as exc:
        print(f"images build FAILED: {exc}", file=sys.stderr)
        return 1
    if not _import_into_node(images, args.dir):
        return 1
    _log(f"images ready in {time.monotonic() - start:.1f}s")
    _summary(images)
    return 0


def cmd_refs(_: argparse.Namespace) -> int:
    try:
        images = built_images()
    except BuildError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    _summary(images)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the images the cache lacks")
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.add_argument(
        "--dir",
        help="the control plane whose real node gets the images, when it runs "
        "(default: the one `make cluster-up` starts)",
    )
    build.set_defaults(func=cmd_build)
    refs = sub.add_parser("refs", help="print the built images' references; exit 1 if not built")
    refs.set_defaults(func=cmd_refs)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
