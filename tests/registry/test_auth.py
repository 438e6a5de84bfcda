"""Basic auth, the bearer token flow and Docker's credential sources, against real registries."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dopt.registry import AuthenticationError, DiskCache, RegistryClient

from .conftest import (
    BASIC_PASSWORD,
    BASIC_USER,
    REFRESH_TOKEN,
    TOKEN_PASSWORD,
    TOKEN_USER,
    Seeded,
)
from .servers import RegistryProcess, TokenService

pytestmark = pytest.mark.docker

MakeClient = Callable[..., RegistryClient]
WriteConfig = Callable[[dict[str, object]], Path]


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _helper(directory: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install ``docker-credential-<name>`` (a shell script) on PATH."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_basic_auth_needs_credentials(basic_registry: RegistryProcess, make_client: MakeClient) -> None:
    client = make_client()
    assert client.ping(basic_registry.host) == "basic"
    with pytest.raises(AuthenticationError) as caught:
        client.list_tags(f"{basic_registry.host}/library/python")
    message = str(caught.value)
    assert f"{basic_registry.host}/library/python: the registry requires authentication (HTTP 401)" in message
    assert f"log in with `docker login {basic_registry.host}`" in message


@pytest.mark.parametrize("style", ["auth", "username-password", "url-key"])
def test_basic_auth_with_config_json(
    style: str, basic_registry: RegistryProcess, seeded: Seeded, docker_config: WriteConfig, make_client: MakeClient
) -> None:
    host = basic_registry.host
    entry: dict[str, str] = (
        {"username": BASIC_USER, "password": BASIC_PASSWORD}
        if style == "username-password"
        else {"auth": _auth(BASIC_USER, BASIC_PASSWORD)}
    )
    key = f"http://{host}/v1/" if style == "url-key" else host
    docker_config({"auths": {key: entry}})
    descriptor = make_client().head_manifest(f"{host}/library/python:3.11-slim")
    assert descriptor.digest == seeded.digests["library/python:3.11-slim"]


def test_basic_auth_wrong_password(
    basic_registry: RegistryProcess, docker_config: WriteConfig, make_client: MakeClient
) -> None:
    config = docker_config({"auths": {basic_registry.host: {"auth": _auth(BASIC_USER, "wrong")}}})
    with pytest.raises(AuthenticationError) as caught:
        make_client().list_tags(f"{basic_registry.host}/library/python")
    message = str(caught.value)
    assert f"the registry rejected the credentials from {config}" in message
    assert f"check them with `docker login {basic_registry.host}`" in message


def test_credential_helpers(
    basic_registry: RegistryProcess,
    seeded: Seeded,
    docker_config: WriteConfig,
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = basic_registry.host
    _helper(
        tmp_path,
        "dopttest",
        f'read server\n[ "$server" = "{host}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}\n'
        f'echo \'{{"ServerURL":"{host}","Username":"{BASIC_USER}","Secret":"{BASIC_PASSWORD}"}}\'\n',
        monkeypatch,
    )
    expected = seeded.digests["library/python:slim"]
    docker_config({"credHelpers": {host: "dopttest"}})
    assert make_client().head_manifest(f"{host}/library/python:slim").digest == expected
    docker_config({"credsStore": "dopttest"})
    assert make_client().head_manifest(f"{host}/library/python:slim").digest == expected

    # A helper that knows nothing of this registry means anonymous access.
    docker_config({"credHelpers": {"elsewhere.example": "dopttest"}, "credsStore": "dopttest-empty"})
    _helper(tmp_path, "dopttest-empty", 'echo "credentials not found in native keychain"; exit 1\n', monkeypatch)
    with pytest.raises(AuthenticationError, match="requires authentication"):
        make_client().list_tags(f"{host}/library/python")


def test_missing_helper_is_reported_when_auth_fails(
    basic_registry: RegistryProcess, seeded: Seeded, docker_config: WriteConfig, make_client: MakeClient
) -> None:
    docker_config({"credsStore": "not-installed-anywhere"})
    # An open registry still works: a broken helper must not block public images.
    assert make_client().list_tags(f"{seeded.host}/library/debian")
    with pytest.raises(AuthenticationError) as caught:
        make_client().list_tags(f"{basic_registry.host}/library/debian")
    message = str(caught.value)
    assert "stored credentials could not be used" in message
    assert "docker-credential-not-installed-anywhere" in message
    assert "not installed" in message


def test_bearer_token_flow_anonymous(
    token_registry: RegistryProcess, token_service: TokenService, seeded: Seeded, make_client: MakeClient
) -> None:
    client = make_client()
    assert client.ping(token_registry.host) == "bearer"
    token_service.requests.clear()
    ref = f"{token_registry.host}/library/python"
    assert sorted(client.list_tags(ref)) == sorted(
        tag.split(":")[1] for tag in seeded.digests if tag.startswith("library/python:")
    )
    digests = client.digests(ref, ["3.11-slim", "3.12-slim", "slim", "3.11.3-slim"])
    assert digests["3.11-slim"].digest == seeded.digests["library/python:3.11-slim"]
    # The first request got a challenge; every later one reused the token.
    assert len(token_service.requests) == 1
    [request] = token_service.requests
    assert (request.method, request.service, request.scopes, request.user) == (
        "GET",
        token_service.service,
        ["repository:library/python:pull"],
        None,
    )


def test_bearer_private_repository(
    token_registry: RegistryProcess,
    token_service: TokenService,
    seeded: Seeded,
    docker_config: WriteConfig,
    make_client: MakeClient,
    tmp_path: Path,
) -> None:
    ref = f"{token_registry.host}/private/app:1.0"
    with pytest.raises(AuthenticationError) as caught:
        make_client().head_manifest(ref)
    assert "requires authentication (HTTP 401)" in str(caught.value)
    assert f"docker login {token_registry.host}" in str(caught.value)

    docker_config({"auths": {token_registry.host: {"auth": _auth(TOKEN_USER, TOKEN_PASSWORD)}}})
    token_service.requests.clear()
    assert make_client().head_manifest(ref).digest == seeded.digests["private/app:1.0"]
    assert [r.user for r in token_service.requests] == [TOKEN_USER]

    config = docker_config({"auths": {token_registry.host: {"auth": _auth(TOKEN_USER, "nope")}}})
    with pytest.raises(AuthenticationError) as rejected:
        make_client(cache=DiskCache(tmp_path / "empty-cache")).head_manifest(ref)
    message = str(rejected.value)
    assert f"the token service {token_service.realm} rejected the credentials from {config}" in message


def test_bearer_identity_token_and_access_token_field(
    token_registry: RegistryProcess,
    token_service: TokenService,
    seeded: Seeded,
    docker_config: WriteConfig,
    make_client: MakeClient,
) -> None:
    docker_config({"auths": {token_registry.host: {"identitytoken": REFRESH_TOKEN}}})
    token_service.requests.clear()
    token_service.token_fields = ("access_token",)  # OAuth2-style answer only
    try:
        descriptor = make_client().head_manifest(f"{token_registry.host}/private/app:1.0")
    finally:
        token_service.token_fields = ("token", "access_token")
    assert descriptor.digest == seeded.digests["private/app:1.0"]
    [request] = token_service.requests
    assert (request.method, request.grant, request.user) == ("POST", "refresh_token", TOKEN_USER)
    assert request.scopes == ["repository:private/app:pull"]
