"""Docker's configuration as the client reads it: credentials, Docker Hub keys, plain-HTTP rules,
and the WWW-Authenticate challenges registries send."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from dopt.registry import CredentialsError, DockerCredentialStore
from dopt.registry.auth import parse_www_authenticate
from dopt.registry.credentials import DOCKER_HUB_CONFIG_KEY, config_key, docker_config_dir
from dopt.registry.transport import daemon_insecure_registries, uses_plain_http


def _store(tmp_path: Path, config: object) -> DockerCredentialStore:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return DockerCredentialStore(tmp_path)


def _auth(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "key", [DOCKER_HUB_CONFIG_KEY, "index.docker.io", "docker.io", "https://registry-1.docker.io/v2/"]
)
def test_docker_hub_credentials_under_any_of_its_names(tmp_path: Path, key: str) -> None:
    store = _store(tmp_path, {"auths": {key: {"auth": _auth("hubuser:hubpass")}}})
    found = store.get("registry-1.docker.io")
    assert found is not None
    assert (found.username, found.password) == ("hubuser", "hubpass")
    assert key in found.source
    assert store.get("ghcr.io") is None


def test_config_keys() -> None:
    assert config_key("registry-1.docker.io") == DOCKER_HUB_CONFIG_KEY
    assert config_key("docker.io") == DOCKER_HUB_CONFIG_KEY
    assert config_key("ghcr.io") == "ghcr.io"
    assert config_key("localhost:5000") == "localhost:5000"


def test_password_may_contain_colons_and_identity_tokens_win(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "auths": {
                "a.example": {"auth": _auth("user:pa:ss")},
                "b.example": {"username": "u", "identitytoken": "refresh-me"},
                "c.example": {},
            }
        },
    )
    a = store.get("a.example")
    assert a is not None and (a.username, a.password) == ("user", "pa:ss")
    b = store.get("b.example")
    assert b is not None and b.identity_token == "refresh-me"
    assert store.get("c.example") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{broken", "is not valid JSON"),
        ("[]", "must contain a JSON object"),
        (json.dumps({"auths": {"x.example": {"auth": "%%%"}}}), "not valid base64"),
        (json.dumps({"auths": {"x.example": {"auth": _auth("no-colon")}}}), "must encode 'username:password'"),
        (json.dumps({"credsStore": "dopt-absent-helper"}), "docker-credential-dopt-absent-helper"),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(CredentialsError) as caught:
        DockerCredentialStore(tmp_path).get("x.example")
    assert message in str(caught.value)
    assert str(tmp_path / "config.json") in str(caught.value) or "credential helper" in str(caught.value)


def test_helper_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in {
        "garbled": "echo 'not json'\n",
        "crashing": "echo 'keychain locked' >&2; exit 3\n",
        "token": 'echo \'{"ServerURL":"x","Username":"<token>","Secret":"refresh-123"}\'\n',
    }.items():
        path = bin_dir / f"docker-credential-{name}"
        path.write_text("#!/bin/sh\ncat >/dev/null\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    with pytest.raises(CredentialsError, match="unreadable answer"):
        _store(tmp_path, {"credsStore": "garbled"}).get("x.example")
    with pytest.raises(CredentialsError, match=r"credential helper docker-credential-crashing failed for x\.example"):
        _store(tmp_path, {"credsStore": "crashing"}).get("x.example")
    found = _store(tmp_path, {"credHelpers": {"x.example": "token"}}).get("x.example")
    assert found is not None and found.identity_token == "refresh-123"


def test_docker_config_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_config_dir() == tmp_path
    assert DockerCredentialStore().config_path == tmp_path / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert docker_config_dir() == tmp_path / "home" / ".docker"


@pytest.mark.parametrize(
    ("registry", "insecure", "plain"),
    [
        ("127.0.0.1:5000", (), True),
        ("127.8.9.10", (), True),
        ("localhost:5000", (), True),
        ("localhost", (), True),
        ("[::1]:5000", (), True),
        ("registry-1.docker.io", ("registry-1.docker.io",), False),
        ("registry.invalid:5000", (), False),
        ("registry.invalid:5000", ("registry.invalid:5000",), True),
        ("registry.invalid:5000", ("registry.invalid",), True),
        ("registry.invalid:5000", ("registry.invalid:6000",), False),
        ("10.1.2.3:5000", ("10.0.0.0/8",), True),
        ("10.1.2.3:5000", ("192.168.0.0/16", "not-a-cidr/x"), False),
    ],
)
def test_plain_http_like_docker(registry: str, insecure: tuple[str, ...], plain: bool) -> None:
    assert uses_plain_http(registry, insecure) is plain


def test_daemon_insecure_registries(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    assert daemon_insecure_registries(path) == ()
    path.write_text(json.dumps({"insecure-registries": ["myreg:5000", "10.0.0.0/8", 7]}))
    assert daemon_insecure_registries(path) == ("myreg:5000", "10.0.0.0/8")
    path.write_text("{")
    assert daemon_insecure_registries(path) == ()


def test_parse_www_authenticate() -> None:
    [bearer] = parse_www_authenticate(
        ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
         'scope="repository:library/python:pull",error="insufficient_scope"']
    )  # fmt: skip
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/python:pull",
        "error": "insufficient_scope",
    }
    basic, other = parse_www_authenticate(['Basic realm="a \\"quoted\\", realm", Newauth Realm=x, title=y'])
    assert basic.params == {"realm": 'a "quoted", realm'}
    assert (other.scheme, other.params) == ("newauth", {"realm": "x", "title": "y"})
