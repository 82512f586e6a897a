"""Containers of the images under test, run with podman on the builder's own storage,
on the host network but bound to 127.0.0.1 only, read-only, with no capabilities;
and the image archives as a runtime imports them."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from scripts.images import Image, ImageBuildError
from scripts.images.builder import podman_argv, tool_env

# Container names carry this session's mark: another session's tests may run at once.
SESSION = f"pingpod-test-{uuid.uuid4().hex[:6]}"


def container_name(kind: str) -> str:
    return f"{SESSION}-{kind}-{uuid.uuid4().hex[:6]}"


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        argv = podman_argv(*args)
    except ImageBuildError as exc:  # podman is missing: a failure, never a skip
        pytest.fail(str(exc), pytrace=False)
    proc = subprocess.run(
        argv, env=tool_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def _ulimits() -> list[str]:
    """Limits podman can set here. It would raise nofile and nproc to 1048576, which root
    on these machines may not (no CAP_SYS_RESOURCE): the container would not start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["--ulimit", f"nofile={soft}:{hard}", "--ulimit", "nproc=4096:4096"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Container:
    name: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def python(self, code: str) -> str:
        """Run Python inside the running container (as its user); stdout."""
        return podman("exec", self.name, "python", "-c", code).stdout

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr


def container_flags(name: str) -> list[str]:
    return [
        "--name",
        name,
        "--network",
        "host",  # no network setup of podman's own; the server binds 127.0.0.1 only
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        *_ulimits(),
    ]


@contextlib.contextmanager
def run_server(image: Image, env: dict[str, str], health: str = "/health") -> Iterator[Container]:
    """The image's own command on a free loopback port, until ``health`` answers 200."""
    name = container_name(image.name)
    port = free_port()
    env_flags = [
        f"--env={k}={v}" for k, v in {**env, "HOST": "127.0.0.1", "PORT": str(port)}.items()
    ]
    podman("run", "--detach", *container_flags(name), *env_flags, image.ref)
    container = Container(name, port)
    try:
        _wait_healthy(container, health)
        yield container
    finally:
        removed = podman("rm", "--force", "--time", "3", name, check=False)
        left = podman("ps", "--all", "--quiet", "--filter", f"name={name}").stdout.strip()
        assert not left, f"container {name} was not removed: {removed.stderr}"


def _wait_healthy(container: Container, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if httpx.get(container.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = repr(exc)
        state = podman("inspect", "--format", "{{.State.Status}}", container.name, check=False)
        if state.stdout.strip() not in ("running", "created"):
            break
        time.sleep(0.2)
    pytest.fail(f"{container.name} did not answer {path} ({last}); logs:\n{container.logs()}")


@dataclass(frozen=True)
class Archive:
    repo_tags: list[str]
    config_name: str  # the config blob's file name: the image ID's hex digits + ".json"
    config: dict[str, Any]


def read_archive(image: Image) -> Archive:
    """manifest.json and the image config of a docker-archive."""
    with tarfile.open(image.archive) as tar:
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        (entry,) = json.load(manifest_file)
        config_file = tar.extractfile(entry["Config"])
        assert config_file is not None
        config = json.load(config_file)
    return Archive(list(entry["RepoTags"]), str(entry["Config"]), config)
