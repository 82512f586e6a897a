"""Fixtures for the image tests: the images (built or cached) and podman to run them.

The build runs from ``pytest_collection_finish``, as the control plane's does
(tests/conftest.py): a cold build takes minutes and the per-test timeout would
cut it short. A build failure or a missing tool fails the tests; nothing skips.

Containers (tests/images/podman.py) are removed after the tests that use them;
after the session none of this session's is left, and nothing is mounted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.images import Image, ensure_images
from scripts.images.builder import settle_storage, storage_mounts
from scripts.images.cache import build_lock
from tests.images.podman import SESSION, podman
from tests.support.prebuild import build_before_tests, uses_fixture

_build_error: str | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _build_error
    if uses_fixture(session, "images"):
        _build_error = build_before_tests(session, "images", ensure_images)


@pytest.fixture(scope="session")
def images() -> dict[str, Image]:
    if _build_error is not None:
        pytest.fail(f"the image build failed: {_build_error}", pytrace=False)
    return ensure_images(log=lambda _: None)  # cached by now: hashes and stamps only


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers() -> Iterator[None]:
    """After the tests: no test container left, and nothing of ours mounted."""
    yield
    left = podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in left if name.startswith(SESSION)], left
    with build_lock():  # a build in another session would hold mounts legitimately
        settle_storage()
        if not left:
            assert storage_mounts() == [], "mounts left under the image storage"
