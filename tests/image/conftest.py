"""Fixtures for tests that run the built image with the docker SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import docker
import pytest
from docker.models.images import Image

if TYPE_CHECKING:
    from conftest import ClusterToken  # tests/conftest.py; handed over by its fixture

IMAGE = os.environ.get("RSH_IMAGE", "ray-serve-haproxy:latest")


@dataclass
class Result:
    exit_code: int
    output: str


class ImageRunner:
    """Runs one-off commands in throwaway containers of the image under test.

    Token authentication is on by default, so a container gets the session's token file at
    /run/secrets/ray_token unless `token=False` (or other `volumes`) say otherwise."""

    def __init__(
        self, client: docker.DockerClient, image: Image, token_volume: dict[str, dict[str, str]]
    ) -> None:
        self.client = client
        self.image = image
        self.token_volume = token_volume

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.image.labels)

    def run(
        self,
        command: list[str],
        *,
        environment: dict[str, str] | None = None,
        entrypoint: list[str] | None = None,
        timeout_s: int = 120,
        token: bool = True,
        volumes: dict[str, dict[str, str]] | None = None,
    ) -> Result:
        mounts = {**(self.token_volume if token else {}), **(volumes or {})}
        container = self.client.containers.create(
            self.image.id,
            command=command,
            environment=environment or {},
            entrypoint=entrypoint,
            network_mode="none",
            volumes=mounts,
        )
        try:
            container.start()
            status = container.wait(timeout=timeout_s)
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return Result(int(status["StatusCode"]), output)
        finally:
            container.remove(force=True)

    def sh(self, script: str, **kwargs: object) -> Result:
        """Runs a shell snippet directly (bypassing the runtime's entrypoint)."""
        return self.run(["-c", script], entrypoint=["/bin/sh"], **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def image_runner(docker_client: docker.DockerClient, cluster_token: ClusterToken) -> ImageRunner:
    try:
        image = docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {IMAGE} not found: build it with scripts/build-image.sh")
    return ImageRunner(docker_client, image, cluster_token.volume)
