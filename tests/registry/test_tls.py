"""HTTPS with certificate verification, against docker-registry serving TLS.

Loopback registries are plain HTTP for the client (as for Docker), so these
tests tell it to treat this one as remote by replacing the plain-HTTP rule; the
TLS handshake, CA verification and hostname check are then the real ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dopt.registry import RegistryClient, RegistryUnreachableError
from dopt.registry import client as client_module

from .conftest import Seeded
from .servers import RegistryProcess, require_tool

pytestmark = pytest.mark.docker

MakeClient = Callable[..., RegistryClient]


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    openssl = require_tool("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    commands = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dopt test CA",
         "-keyout", str(ca_key), "-out", str(ca_cert)],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(csr)],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert)],
    ]  # fmt: skip
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return ca_cert, cert, key


@pytest.fixture(scope="module")
def tls_registry(seeded: Seeded, registry_root: Path) -> Iterator[tuple[RegistryProcess, Path]]:
    ca, cert, key = _make_certificates(registry_root / "tls")
    registry = RegistryProcess(registry_root / "tls-registry", registry_root / "storage", tls=(cert, key))
    yield registry, ca
    registry.stop()


@pytest.fixture
def https_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "uses_plain_http", lambda registry, insecure=(): False)


@pytest.mark.usefixtures("https_everywhere")
def test_https_with_a_trusted_ca(
    tls_registry: tuple[RegistryProcess, Path], seeded: Seeded, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, ca = tls_registry
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    client = make_client()
    assert client.ping(registry.host) is None
    assert (
        client.head_manifest(f"{registry.host}/library/python:3.11-slim").digest
        == (seeded.digests["library/python:3.11-slim"])
    )


@pytest.mark.usefixtures("https_everywhere")
def test_untrusted_certificate_is_refused(
    tls_registry: tuple[RegistryProcess, Path], make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    registry, _ = tls_registry
    other_ca, _, _ = _make_certificates(tmp_path / "other")
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    with pytest.raises(RegistryUnreachableError) as caught:
        make_client().head_manifest(f"{registry.host}/library/python:3.11-slim")
    message = str(caught.value)
    assert f"the TLS certificate of {registry.host} could not be verified" in message
    assert "private CA" in message


@pytest.mark.usefixtures("https_everywhere")
def test_https_to_a_plain_http_registry(seeded: Seeded, make_client: MakeClient) -> None:
    with pytest.raises(RegistryUnreachableError) as caught:
        make_client().ping(seeded.host)
    assert f"TLS with {seeded.host} failed" in str(caught.value)
    assert "list it as an insecure registry" in str(caught.value)
