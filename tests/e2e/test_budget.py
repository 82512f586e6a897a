"""The page's JavaScript stays within its size budget: 100 kB gzip for every
script the build emits (lazy chunks included), as the provisioner serves them.

gzip at zlib's default level (`gzip -6`); Vite's build line reports about 1 %
more with its own compressor. What the budget is spent on: docs/frontend.md.
"""

from __future__ import annotations

import gzip
import re

import pytest

from tests.e2e.conftest import DIST, Provisioner

pytestmark = pytest.mark.e2e

BUDGET_BYTES = 100_000


def test_the_page_javascript_is_within_its_gzip_budget(provisioner: Provisioner) -> None:
    scripts = sorted(p.name for p in (DIST / "assets").glob("*.js"))
    with provisioner.client() as client:
        page = client.get("/")
        assert page.status_code == 200
        entries = re.findall(r'<script[^>]+src="/assets/([^"]+\.js)"', page.text)
        assert entries and set(entries) <= set(scripts), (entries, scripts)
        sizes: dict[str, int] = {}
        for name in scripts:
            served = client.get(f"/assets/{name}")
            assert served.status_code == 200, name
            sizes[name] = len(gzip.compress(served.content, compresslevel=6))
    total = sum(sizes.values())
    assert total <= BUDGET_BYTES, f"{total / 1000:.1f} kB gzip, over the budget: {sizes}"
