"""Schemathesis against a real provisioner (local backend): every operation
of /openapi.json fuzzed with generated requests, valid and not, plus the
stateful phase that follows the document's links (claim, read, kill, end).
Every check is on: no 5xx, every status, header, media type and body as
documented, bad input refused with 4xx, ended sessions gone. Then the server
must still be alive and healthy.

The number of cases is bounded by `max-examples` in schemathesis.toml (about
a minute on 2 cores); a failure prints schemathesis' report with the seed and
a curl command for each case.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import StartProvisioner

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def claims(metrics_url: str) -> dict[str, float]:
    """pingpod_claims_total and pingpod_rejections_total by label, from the metrics port."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(metrics_url).text):
        for sample in family.samples:
            if sample.name in ("pingpod_claims_total", "pingpod_rejections_total"):
                label = sample.labels.get("path") or sample.labels.get("reason", "")
                found[f"{sample.name}:{label}"] = sample.value
    return found


@pytest.mark.parametrize("origin", ["generated", "page"])
def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    start_provisioner: StartProvisioner, tmp_path: Path, origin: str
) -> None:
    """`generated`: Origin is fuzzed like any header (mostly foreign: 403s).
    `page`: every request carries the page's own Origin, as the browser sends,
    so kills and ends pass the guard and the stateful phase goes all the way."""
    server = start_provisioner(
        POOL_SIZE="3",
        MAX_SESSIONS="6",
        SESSION_IDLE_TIMEOUT="3",  # sessions nobody connects to go soon: room for more
        CLAIM_TIMEOUT="5",
        # Fuzzing is one client: lift the per-address limit so claims are tried,
        # not all refused (429 rate_limited is in the document and checked anyway).
        RATE_LIMIT_PER_MINUTE="600000",
        RATE_LIMIT_BURST="100000",
    )
    server.wait_pool(3)
    pinned = ["--header", f"Origin: {server.url}"] if origin == "page" else []
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            server.url + "/openapi.json",
            "--no-color",
            *pinned,
        ],
        cwd=tmp_path,  # its reports and any cache stay in the test's directory
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = run.stdout + run.stderr
    print(report)  # the summary (operations, phases, cases) in the test's output
    assert run.returncode == 0, report[-20_000:]
    assert "test cases:" in report.lower() and " generated" in report
    assert (tmp_path / "schemathesis-reports").is_dir()

    # The server took it all and still serves.
    assert server.proc.poll() is None, "the provisioner died under fuzzing"
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    assert httpx.get(server.url + "/ready").status_code == 200
    counts = claims(server.metrics_url)
    # Sessions were really claimed (fuzzing was not only refusals)...
    assert (
        counts.get("pingpod_claims_total:warm", 0) + counts.get("pingpod_claims_total:cold", 0) > 0
    )
    # ...and none was refused by the rate limiter, which the settings lifted.
    assert counts.get("pingpod_rejections_total:rate_limited", 0) == 0
    assert "Traceback" not in server.log.read_text()
