"""Fixtures for the verify tests that really build images.

CI must not go green by skipping: when Docker or the local base images are
missing, every docker test fails with the reason and the command that fixes it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from dopt.verify.engine import Engine, find_client

REQUIRED_IMAGES = ("python:3.11-slim", "debian:bookworm-slim", "buildpack-deps:bookworm-curl")


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_client(), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Fail (never skip) when the engine or a stand-in base image is missing."""
    info = _docker("info", "--format", "{{.ServerVersion}}")
    if info.returncode != 0:
        pytest.fail(
            "Docker engine not reachable (`docker info` failed: "
            f"{info.stderr.strip().splitlines()[-1] if info.stderr.strip() else 'no output'}); "
            "start dockerd before running the docker tests",
            pytrace=False,
        )
    missing = [image for image in REQUIRED_IMAGES if _docker("image", "inspect", image).returncode != 0]
    if missing:
        pytest.fail(
            f"base image(s) {', '.join(missing)} missing: run shared/docker/make-base-images first",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def engine(docker_ready: None) -> Iterator[Engine]:
    """One engine for the session, so every image the tests build is removed at the end."""
    with Engine() as shared:
        shared.info()
        yield shared
