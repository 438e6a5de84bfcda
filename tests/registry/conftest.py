"""Session fixtures: real registries seeded with real pushed images.

Three ``docker-registry`` processes share one storage directory: an open one
(seeded with ``docker push`` and raw API calls), one behind htpasswd basic auth
and one behind a JWT token service.  A front adds tag-list pagination and fault
injection to the open one.  Everything listens on 127.0.0.1 and is stopped at
the end of the session; local image tags created for pushing are removed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dopt.registry import DiskCache, RegistryClient

from .servers import (
    DOCKER,
    DOCKER_V2,
    RegistryFront,
    RegistryProcess,
    TokenService,
    registry_api,
    require_tool,
    sha256_digest,
)

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

BASIC_USER, BASIC_PASSWORD = "alice", "wonderland-42"
TOKEN_USER, TOKEN_PASSWORD = "bob", "builder-7"
REFRESH_TOKEN = "refresh-token-for-bob"
MANY_TAGS = [f"t{i:03d}" for i in range(150)]

# Tiny FROM-scratch images, distinguished by their file content.
_PYTHON_TAGS = {
    "p1": ["3.11.4-slim", "3.11-slim", "3.11.4-slim-bookworm", "3.11-slim-bookworm"],
    "p0": ["3.11.3-slim"],
    "p2": ["3.12.1-slim", "3.12-slim", "3-slim", "slim"],
    "p3": ["3.13.0rc1-slim"],
}


@dataclass
class Seeded:
    """The open registry and what was pushed into it."""

    registry: RegistryProcess
    digests: dict[str, str] = field(default_factory=dict)  # "repo:tag" -> digest docker push reported
    index_digest: str = ""  # OCI index behind library/alpine:3.19.1, 3.19, 3, latest
    list_digest: str = ""  # Docker manifest list behind library/alpine:3.18.6
    debian_source: str = ""  # which local image became library/debian:12.5

    @property
    def host(self) -> str:
        return self.registry.host


def _docker(*args: str, input_text: str | None = None) -> str:
    completed = subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        input=input_text,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"`docker {' '.join(args)}` failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}",
            pytrace=False,
        )
    return completed.stdout


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def seeded(registry_root: Path) -> Iterator[Seeded]:
    """The open registry, filled by ``docker push`` and by PUTting index manifests."""
    require_tool(DOCKER, "docker.io")
    info = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"the Docker engine is not reachable with {DOCKER}: {info.stderr.strip()}", pytrace=False)

    storage = registry_root / "storage"
    registry = RegistryProcess(registry_root / "open", storage)
    seeded = Seeded(registry=registry)
    local_tags: list[str] = []

    def build(name: str) -> str:
        context = registry_root / "contexts" / name
        context.mkdir(parents=True, exist_ok=True)
        (context / "payload.txt").write_text(f"dopt registry test image {name}\n")
        (context / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /payload.txt\n")
        tag = f"dopt-registry-test/{name}:{registry.port}"
        _docker("build", "-q", "-t", tag, str(context))
        local_tags.append(tag)
        return tag

    def push(source: str, repo_tag: str) -> str:
        remote = f"{registry.host}/{repo_tag}"
        _docker("tag", source, remote)
        local_tags.append(remote)
        output = _docker("push", remote)
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
        assert match, f"no digest in docker push output:\n{output}"
        seeded.digests[repo_tag] = match.group(1)
        return match.group(1)

    def manifest(repo: str, tag: str) -> bytes:
        status, _, body = registry_api(
            registry.host, "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": DOCKER_V2}
        )
        assert status == 200, (repo, tag, status, body)
        return body

    def put_manifest(repo: str, tag: str, media_type: str, body: bytes) -> str:
        status, headers, reply = registry_api(
            registry.host, "PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type}
        )
        assert status == 201, (repo, tag, status, reply)
        return str(headers["Docker-Content-Digest"])

    def retag(repo: str, existing: str, new: str) -> None:
        """Add a tag through the registry API: what ``docker push`` of another tag would do."""
        digest = put_manifest(repo, new, DOCKER_V2, manifest(repo, existing))
        assert digest == seeded.digests[f"{repo}:{existing}"]
        seeded.digests[f"{repo}:{new}"] = digest

    try:
        images = {name: build(name) for name in ("p0", "p1", "p2", "p3", "d0", "a-amd64", "a-arm64", "a-old")}
        for name, (first, *others) in _PYTHON_TAGS.items():
            push(images[name], f"library/python:{first}")
            for tag in others:
                retag("library/python", first, tag)

        # Real Debian base image if the engine has it; a scratch stand-in otherwise.
        inspect = subprocess.run([DOCKER, "image", "inspect", "debian:bookworm"], capture_output=True)
        seeded.debian_source = "debian:bookworm" if inspect.returncode == 0 else build("d1")
        push(seeded.debian_source, "library/debian:12.5")
        for tag in ("12", "bookworm", "latest"):
            retag("library/debian", "12.5", tag)
        push(images["d0"], "library/debian:12.4")

        # Multi-platform images: an OCI index and a Docker manifest list over pushed manifests.
        for name in ("a-amd64", "a-arm64", "a-old"):
            push(images[name], f"library/alpine:build-{name}")

        def entry(name: str, architecture: str) -> dict[str, object]:
            body = manifest("library/alpine", f"build-{name}")
            return {
                "mediaType": DOCKER_V2,
                "digest": sha256_digest(body),
                "size": len(body),
                "platform": {"architecture": architecture, "os": "linux"},
            }

        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [entry("a-amd64", "amd64"), entry("a-arm64", "arm64")],
            }
        ).encode()
        for tag in ("3.19.1", "3.19", "3", "latest"):
            seeded.index_digest = put_manifest("library/alpine", tag, OCI_INDEX, index)
        assert seeded.index_digest == sha256_digest(index)
        manifest_list = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_LIST,
                "manifests": [entry("a-old", "amd64"), entry("a-arm64", "arm64")],
            }
        ).encode()
        seeded.list_digest = put_manifest("library/alpine", "3.18.6", DOCKER_LIST, manifest_list)

        # Many tags on one manifest, for pagination.
        push(images["p0"], f"many/tags:{MANY_TAGS[0]}")
        body = manifest("many/tags", MANY_TAGS[0])
        for tag in MANY_TAGS[1:]:
            put_manifest("many/tags", tag, DOCKER_V2, body)

        # A repository the token service only opens to logged-in users.
        push(images["p1"], "private/app:1.0")
        yield seeded
    finally:
        registry.stop()
        if local_tags:
            subprocess.run([DOCKER, "rmi", *reversed(local_tags)], capture_output=True)


@pytest.fixture(scope="session")
def basic_registry(seeded: Seeded, registry_root: Path) -> Iterator[RegistryProcess]:
    """A registry behind htpasswd (bcrypt) basic auth, serving the seeded storage."""
    htpasswd = require_tool("htpasswd", "apache2-utils")
    line = subprocess.run(
        [htpasswd, "-Bbn", BASIC_USER, BASIC_PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    password_file = registry_root / "htpasswd"
    password_file.write_text(line + "\n")
    registry = RegistryProcess(
        registry_root / "basic",
        registry_root / "storage",
        auth={"htpasswd": {"realm": "dopt-test", "path": str(password_file)}},
    )
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_service(registry_root: Path) -> Iterator[TokenService]:
    service = TokenService(
        registry_root / "token",
        users={TOKEN_USER: TOKEN_PASSWORD},
        refresh_tokens={REFRESH_TOKEN: TOKEN_USER},
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def token_registry(seeded: Seeded, token_service: TokenService, registry_root: Path) -> Iterator[RegistryProcess]:
    """A registry that, like Docker Hub, only accepts bearer tokens from its token service."""
    registry = RegistryProcess(
        registry_root / "token-registry", registry_root / "storage", auth=token_service.registry_auth()
    )
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def front(seeded: Seeded) -> Iterator[RegistryFront]:
    front = RegistryFront(seeded.host)
    yield front
    front.stop()


@pytest.fixture
def docker_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty Docker config directory, also exported as ``DOCKER_CONFIG``."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


@pytest.fixture
def docker_config(docker_config_dir: Path) -> Callable[[dict[str, object]], Path]:
    """Write a Docker ``config.json`` into the test's ``DOCKER_CONFIG`` directory."""

    def write(config: dict[str, object]) -> Path:
        (docker_config_dir / "config.json").write_text(json.dumps(config))
        return docker_config_dir / "config.json"

    return write


@pytest.fixture
def make_client(tmp_path: Path, docker_config_dir: Path) -> Iterator[Callable[..., RegistryClient]]:
    """Build clients with a private cache and the test's own Docker config directory."""
    clients: list[RegistryClient] = []

    def make(**kwargs: object) -> RegistryClient:
        kwargs.setdefault("cache", DiskCache(tmp_path / "cache"))
        kwargs.setdefault("docker_config_dir", docker_config_dir)
        kwargs.setdefault("insecure_registries", ())
        kwargs.setdefault("timeout", 10.0)
        client = RegistryClient(**kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
