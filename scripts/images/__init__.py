"""Container images for echo and provisioner, built here with buildah, cached by input hash.

``ensure_images()`` builds what the cache lacks and returns every image with
its full reference and a docker-archive for ``ctr images import``; the pod
sandbox image is ``PAUSE_IMAGE``. The command line is
``python -m scripts.images build|refs``. How and why: docs/images.md.
"""

from __future__ import annotations

from .build import (
    ADDON_IMAGES,
    ALL_IMAGES,
    APP_IMAGES,
    REPOSITORY,
    Image,
    built_images,
    ensure_images,
)
from .cache import ImageBuildError, images_root
from .pause import PAUSE_IMAGE

__all__ = [
    "ADDON_IMAGES",
    "ALL_IMAGES",
    "APP_IMAGES",
    "PAUSE_IMAGE",
    "REPOSITORY",
    "Image",
    "ImageBuildError",
    "built_images",
    "ensure_images",
    "images_root",
]
