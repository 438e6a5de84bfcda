"""Real servers for the registry tests: docker-registry processes, a token service, a front.

* :class:`RegistryProcess` runs Debian's ``/usr/bin/docker-registry`` (the CNCF
  distribution registry) on a free 127.0.0.1 port with filesystem storage.
* :class:`TokenService` is a Docker-style token server (``GET realm?service=&scope=``
  with optional basic auth, ``POST`` refresh-token grant) that signs RS256 JWTs
  the real registry verifies through its ``auth.token`` configuration.
* :class:`RegistryFront` forwards to a real registry and adds what distribution
  2.8 lacks or what cannot be provoked otherwise: tag-list pagination per the
  spec (``n``/``last`` + ``Link``; 2.8 ignores both), injected error statuses
  (429, 500) and a mode that hides ``Docker-Content-Digest``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

DOCKER_REGISTRY = "/usr/bin/docker-registry"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER = "/usr/bin/docker"


def require_tool(path_or_name: str, package: str) -> str:
    """The tool's path; fails the test (never skips) with the install command if it is missing."""
    found = shutil.which(path_or_name)
    if found is None:
        pytest.fail(f"{path_or_name} is missing: install it with `apt-get install -y {package}`", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    """Wait until ``url`` answers any HTTP status (401 counts: the server is up)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    # Readiness only: the certificate is checked by the tests, not here.
    context = ssl._create_unverified_context()
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s: {last}")


class RegistryProcess:
    """One ``docker-registry serve`` process with its own config, stopped by :meth:`stop`."""

    def __init__(
        self,
        workdir: Path,
        storage: Path,
        auth: dict[str, object] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        require_tool(DOCKER_REGISTRY, "docker-registry")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        http_section: dict[str, object] = {"addr": self.host, "secret": secrets.token_hex(16)}
        scheme = "http"
        if tls:
            certificate, key = tls
            http_section["tls"] = {"certificate": str(certificate), "key": str(key)}
            scheme = "https"
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": http_section,
        }
        if auth:
            config["auth"] = auth
        # JSON is YAML, so the registry reads this file as its YAML config.
        self.config_path = self.workdir / "config.yml"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = self.workdir / "registry.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(self.config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"{scheme}://{self.host}/v2/")
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\nregistry log:\n{self.log_path.read_text()}") from exc

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def registry_api(
    host: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A raw request to a registry (used to seed it), without the client under test."""
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


# --- JWT token service ---------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenRequest:
    """What the token service was asked, for assertions."""

    method: str
    service: str
    scopes: list[str]
    user: str | None
    grant: str | None = None


@dataclass
class TokenService:
    """A Docker-style token server signing JWTs that docker-registry's ``auth.token`` accepts.

    Anonymous callers may pull every repository except those under ``private/``,
    as on Docker Hub, where an anonymous token for a private repository simply
    carries no access and the registry then answers 401.
    """

    workdir: Path
    issuer: str = "dopt-test-issuer"
    service: str = "dopt-test-registry"
    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    token_fields: tuple[str, ...] = ("token", "access_token")
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        openssl = require_tool("openssl", "openssl")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key_path = self.workdir / "signing-key.pem"
        self.cert_path = self.workdir / "signing-cert.pem"
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                "-subj", "/CN=dopt test token signer",
                "-keyout", str(self.key_path), "-out", str(self.cert_path),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        der = ssl.PEM_cert_to_DER_cert(self.cert_path.read_text())
        self._x5c = base64.b64encode(der).decode("ascii")
        self._openssl = openssl
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, object]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if service.users.get(name) != password:
                        service._record(TokenRequest("GET", "", [], name))
                        self._reply(401, {"details": "incorrect username or password"})
                        return
                    user = name
                self._issue("GET", query.get("service", [""])[0], query.get("scope", []), user, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                grant = form.get("grant_type", [""])[0]
                user = service.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if grant != "refresh_token" or user is None or form.get("client_id") != ["dopt"]:
                    service._record(TokenRequest("POST", "", [], None, grant))
                    self._reply(401, {"details": "invalid refresh token"})
                    return
                scopes = form.get("scope", [""])[0].split()
                self._issue("POST", form.get("service", [""])[0], scopes, user, grant)

            def _issue(self, method: str, svc: str, scopes: list[str], user: str | None, grant: str | None) -> None:
                service._record(TokenRequest(method, svc, scopes, user, grant))
                token = service.sign(scopes, user)
                self._reply(200, {**dict.fromkeys(service.token_fields, token), "expires_in": 300})

        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def sign(self, scopes: list[str], user: str | None) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a == "pull" and (user or not name.startswith("private/"))]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            [self._openssl, "dgst", "-sha256", "-sign", str(self.key_path)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def registry_auth(self) -> dict[str, object]:
        """The ``auth`` section that makes docker-registry trust this service."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- front -----------------------------------------------------------------------------


@dataclass
class Fault:
    """An answer the front gives instead of forwarding, for paths containing ``path_part``."""

    path_part: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RegistryFront:
    """Forwards to a real registry, paginating tag lists and optionally injecting faults."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.faults: list[Fault] = []
        self.hide_digest_header = False
        self.paths: list[str] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                with front._lock:
                    front.paths.append(self.path)
                    faults = list(front.faults)
                for fault in faults:
                    if fault.path_part in self.path:
                        self._send(fault.status, fault.headers, fault.body)
                        return
                parts = urlsplit(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)) or None
                status, reply_headers, reply_body = registry_api(front.backend, self.command, parts.path, body, headers)
                hop_by_hop = ("content-length", "connection", "transfer-encoding", "keep-alive")
                forwarded = {k: v for k, v in reply_headers.items() if k.lower() not in hop_by_hop}
                if front.hide_digest_header:
                    forwarded.pop("Docker-Content-Digest", None)
                if status == 200 and parts.path.endswith("/tags/list"):
                    reply_body = self._paginate(parts.path, parse_qs(parts.query), reply_body, forwarded)
                if self.command == "HEAD" and "Content-Length" in reply_headers:
                    forwarded["Content-Length"] = reply_headers["Content-Length"]
                    self.send_response(status)
                    for name, value in forwarded.items():
                        self.send_header(name, value)
                    self.end_headers()
                    return
                self._send(status, forwarded, reply_body)

            def _paginate(self, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]) -> bytes:
                data = json.loads(body)
                tags = sorted(data.get("tags") or [])
                last = query.get("last", [None])[0]
                if last is not None:
                    tags = [tag for tag in tags if tag > last]
                size = int(query.get("n", ["0"])[0] or 0)
                if size and len(tags) > size:
                    tags = tags[:size]
                    headers["Link"] = f'<{path}?{urlencode({"n": size, "last": tags[-1]})}>; rel="next"'
                return json.dumps({"name": data["name"], "tags": tags}).encode()

            do_GET = do_HEAD = do_PUT = _handle

        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def count(self, path_part: str) -> int:
        with self._lock:
            return sum(path_part in path for path in self.paths)

    @contextlib.contextmanager
    def fault(self, fault: Fault) -> Iterator[None]:
        with self._lock:
            self.faults.append(fault)
        try:
            yield
        finally:
            with self._lock:
                self.faults.remove(fault)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# Pushing test images through the registry API (no Docker engine needed)


def upload_blob(host: str, repo: str, data: bytes) -> str:
    digest = sha256_digest(data)
    status, headers, body = registry_api(host, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, (status, body)
    location = urlsplit(str(headers["Location"]))
    query = f"{location.query}&digest={digest}" if location.query else f"digest={digest}"
    status, _, body = registry_api(
        host, "PUT", f"{location.path}?{query}", data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, (status, body)
    return digest


def put_manifest(host: str, repo: str, tag: str, media_type: str, body: bytes) -> str:
    status, headers, reply = registry_api(
        host, "PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type}
    )
    assert status == 201, (repo, tag, status, reply)
    return str(headers["Docker-Content-Digest"])


def push_image_blobs(host: str, repo: str, name: str, architecture: str = "amd64") -> bytes:
    """Upload a one-layer test image's blobs; return its manifest, to tag with :func:`put_manifest`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        payload = f"dopt pinning test image {name} ({architecture})\n".encode()
        info = tarfile.TarInfo("payload.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    tar = buffer.getvalue()
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
        },
        sort_keys=True,
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_V2,
        "config": {"mediaType": DOCKER_CONFIG_TYPE, "size": len(config), "digest": upload_blob(host, repo, config)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": upload_blob(host, repo, layer)}],
    }
    return json.dumps(manifest, sort_keys=True).encode()
