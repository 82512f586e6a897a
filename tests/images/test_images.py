"""The echo, provisioner and pause images, built by scripts.images and run with podman.

Every request goes to 127.0.0.1: the servers run on the host network but bind
loopback only (HOST=127.0.0.1).
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from scripts.images import PAUSE_IMAGE, REPOSITORY, Image, build, builder, ensure_images
from scripts.images.build import REPO_ROOT
from scripts.servers import free_port
from tests.images.podman import (
    Container,
    container_flags,
    container_name,
    podman,
    read_archive,
    run_server,
)

# Run inside a container: its PID 1's ids, what a write to the root filesystem does, and
# the distributions Python finds (the venv only: pip and setuptools are gone).
_PROBE = """\
import errno, json
ids = {}
for line in open("/proc/1/status"):
    key, _, value = line.partition(":")
    if key in ("Uid", "Gid"):
        ids[key] = value.split()
try:
    open("/x", "w").close()
    write = "written"
except OSError as exc:
    write = errno.errorcode.get(exc.errno, str(exc.errno))
from importlib import metadata
dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
print(json.dumps({"ids": ids, "write": write, "dists": dists}))
"""


@pytest.fixture(scope="module")
def echo(images: dict[str, Image]) -> Iterator[Container]:
    with run_server(images["echo"], {"POD_NAME": "echo-under-test"}) as container:
        yield container


@pytest.fixture(scope="module")
def provisioner(images: dict[str, Image]) -> Iterator[Container]:
    # No cluster here: the local backend, and no warm pool (the image has no echo
    # server to spawn; the page and the API do not need one).
    # The host's network: a free metrics port, not the shared default (9090).
    env = {"BACKEND": "local", "POOL_SIZE": "0", "METRICS_PORT": str(free_port())}
    with run_server(images["provisioner"], env) as container:
        yield container


def _get(url: str) -> tuple[int, str, str]:
    response = httpx.get(url, timeout=5)
    return response.status_code, response.headers.get("content-type", ""), response.text


def test_references_and_archives(images: dict[str, Image]) -> None:
    assert set(images) == {"echo", "provisioner", "pause"}
    for name in ("echo", "provisioner"):
        assert re.fullmatch(rf"{REPOSITORY}/{name}:[0-9a-f]{{12}}", images[name].ref)
        assert images[name].ref.endswith(images[name].input_hash[:12])
    assert images["pause"].ref == PAUSE_IMAGE
    for image in images.values():
        archive = read_archive(image)
        # What `ctr images import` names the image after (normalised to docker.io/...).
        assert archive.repo_tags == [image.ref]
        assert f"sha256:{archive.config_name.removesuffix('.json')}" == image.id
        assert archive.config["os"] == "linux"
        user = "65535:65535" if image.name == "pause" else "10001:10001"
        assert archive.config["config"]["User"] == user


def test_warm_run_builds_nothing(images: dict[str, Image], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("a warm run called the builder")

    monkeypatch.setattr(builder, "bud", refuse)
    monkeypatch.setattr(builder, "export_archive", refuse)
    again = ensure_images(log=lambda _: None)
    assert again == images
    assert build.built_images() == images


def test_echo_answers_health_and_ping(echo: Container) -> None:
    status, content_type, body = _get(f"{echo.base_url}/health")
    assert status == 200 and content_type.startswith("application/json")
    assert json.loads(body) == {"status": "ok", "pod": "echo-under-test"}
    with connect(f"ws://127.0.0.1:{echo.port}/ws", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "ping", "seq": 7, "t": 1234.5}))
        pong = json.loads(ws.recv(timeout=5))
    assert pong["type"] == "pong" and pong["seq"] == 7 and pong["t"] == 1234.5
    assert pong["pod"] == "echo-under-test"


def test_provisioner_serves_the_page(provisioner: Container) -> None:
    status, content_type, body = _get(f"{provisioner.base_url}/")
    assert status == 200 and content_type.startswith("text/html")
    assert '<div id="root">' in body
    # The built page (Vite's bundle), not the source index.html.
    script = re.search(r'<script type="module"[^>]* src="(/assets/[^"]+\.js)"', body)
    assert script is not None, body
    status, content_type, _ = _get(f"{provisioner.base_url}{script.group(1)}")
    assert status == 200 and "javascript" in content_type


@pytest.mark.parametrize("which", ["echo", "provisioner"])
def test_non_root_on_a_read_only_root(which: str, request: pytest.FixtureRequest) -> None:
    container: Container = request.getfixturevalue(which)
    probe = json.loads(container.python(_PROBE))
    # Real, effective, saved and filesystem ids of the server process: the image's USER,
    # since the container is started without --user.
    assert probe["ids"] == {"Uid": ["10001"] * 4, "Gid": ["10001"] * 4}
    assert probe["write"] in (errno.errorcode[errno.EROFS], errno.errorcode[errno.EACCES])
    # Exactly the runtime pins: the venv was copied whole from the build stage.
    pins = (REPO_ROOT / "services" / "requirements-runtime.txt").read_text()
    expected = sorted(_normalise(line) for line in pins.splitlines() if "==" in line)
    assert sorted(_normalise(dist) for dist in probe["dists"]) == expected


def _normalise(pin: str) -> str:
    name, _, version = pin.strip().partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_pause_image_runs_and_stops_on_sigterm(images: dict[str, Image]) -> None:
    name = container_name("pause")
    version = podman("run", "--rm", *container_flags(f"{name}-v"), PAUSE_IMAGE, "-v").stdout
    assert version.startswith(f"pause.c v{PAUSE_IMAGE.rsplit(':', 1)[1]}-")
    podman("run", "--detach", *container_flags(name), PAUSE_IMAGE)
    try:
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
        podman("stop", "--time", "10", name)
        # pause exits 0 on SIGTERM; had it ignored it, podman's SIGKILL after 10 s
        # would leave exit code 137.
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    finally:
        podman("rm", "--force", name, check=False)
    assert not podman("ps", "--all", "--quiet", "--filter", f"name={name}").stdout.strip()
