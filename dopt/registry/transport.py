"""HTTP for the registry client, on the standard library only.

Why not urllib: it keeps the ``Authorization`` header when a redirect leaves for
another host (leaking registry credentials to e.g. a storage bucket), it opens a
new TCP/TLS connection for every request (slow when checking dozens of tags),
and its errors are too generic to tell a user what to fix.  This module keeps
one keep-alive connection per thread and origin, follows redirects itself, and
turns socket, DNS and TLS failures into :class:`RegistryUnreachableError` with a
message that says which registry and what to try.

It also decides, as Docker does, which registries speak plain HTTP: loopback
ones (``localhost``, 127.0.0.0/8, ``::1``, or a name resolving there) and ones
listed as insecure (``host[:port]`` or a CIDR range, like the daemon's
``insecure-registries``); every other registry is HTTPS verified against the
system CA store.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .errors import RegistryResponseError, RegistryUnreachableError
from .reference import DOCKER_HUB_API_HOST

DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_REDIRECTS = 5
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Tag lists of big repositories run to a few MB; anything far beyond is not a registry answer."""

DAEMON_CONFIG_PATH = Path("/etc/docker/daemon.json")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass(frozen=True)
class Target:
    """What a request is about, so that every error message can name it."""

    registry: str
    repository: str | None = None

    @property
    def name(self) -> str:
        """The registry as users know it: Docker Hub's API host is not a name they typed."""
        return f"Docker Hub ({self.registry})" if self.registry == DOCKER_HUB_API_HOST else self.registry


@dataclass(frozen=True)
class Response:
    """A fully read HTTP response."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, if any."""
        return self.headers.get(name)

    def json(self, target: Target) -> object:
        """The body parsed as JSON, or a :class:`RegistryResponseError` naming ``target``."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise RegistryResponseError(
                f"registry {target.name} sent a response that is not valid JSON for {self.url} "
                f"({exc}); is this really an OCI/Docker registry?",
                registry=target.registry,
                repository=target.repository,
                status=self.status,
            ) from exc


def _split_host_port(registry: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{registry}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or registry, port


@functools.lru_cache(maxsize=256)
def _resolves_to(host: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The addresses ``host`` resolves to (empty if it does not resolve); cached per process."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            continue
    return tuple(addresses)


def uses_plain_http(registry: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Whether Docker would talk to ``registry`` (``host[:port]``) over plain HTTP.

    True for loopback registries and for those matching an ``insecure_registries``
    entry, which is either an exact ``host[:port]`` or a CIDR range that one of the
    registry's addresses falls in.  Docker Hub is always HTTPS.
    """
    if registry == DOCKER_HUB_API_HOST:
        return False
    host, _ = _split_host_port(registry)
    networks = []
    for entry in insecure_registries:
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        elif entry in (registry, host):
            return True
    if host == "localhost":
        return True
    try:
        addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = (ipaddress.ip_address(host),)
    except ValueError:
        addresses = _resolves_to(host)
    return any(address.is_loopback or any(address in net for net in networks) for address in addresses)


def daemon_insecure_registries(path: Path = DAEMON_CONFIG_PATH) -> tuple[str, ...]:
    """The ``insecure-registries`` of the local Docker daemon's config, if readable.

    Reading them lets dopt reach the same registries over HTTP that ``docker pull``
    does on this machine without the user repeating the list.
    """
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    entries = config.get("insecure-registries") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(entry for entry in entries if isinstance(entry, str))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class Transport:
    """Sends requests over per-thread keep-alive connections and follows redirects."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS, user_agent: str = "dopt") -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self._ssl_context: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl_context is None:
                # The system CA store, like Docker; SSL_CERT_FILE/SSL_CERT_DIR are honoured.
                self._ssl_context = ssl.create_default_context()
            return self._ssl_context

    def _connection(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str, int | None], http.client.HTTPConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, host, port)
        connection = pool.get(key)
        if connection is None:
            if scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context())
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            pool[key] = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _network_error(self, exc: BaseException, url: str, target: Target) -> RegistryUnreachableError:
        parts = urlsplit(url)
        where = parts.netloc
        if isinstance(exc, socket.gaierror):
            detail = f"cannot resolve host {parts.hostname!r} ({exc.strerror}); check the registry name and DNS"
        elif isinstance(exc, ConnectionRefusedError):
            detail = f"connection to {where} refused; is a registry running and listening there?"
        elif isinstance(exc, TimeoutError):
            detail = f"no answer from {where} within {self.timeout:g}s; check the network or try again later"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            detail = (
                f"the TLS certificate of {where} could not be verified ({exc.verify_message}); "
                "if the registry uses a private CA, add it to the system trust store "
                "(or point SSL_CERT_FILE at it)"
            )
        elif isinstance(exc, ssl.SSLError):
            detail = (
                f"TLS with {where} failed ({exc.reason or exc}); if the registry only speaks plain HTTP, "
                "list it as an insecure registry"
            )
        elif isinstance(exc, http.client.HTTPException):
            detail = f"{where} did not answer with valid HTTP ({exc!r}); is this the registry's address and port?"
        else:
            detail = f"network error talking to {where}: {exc}"
        what = f" (looking up {target.repository})" if target.repository else ""
        return RegistryUnreachableError(
            f"cannot reach registry {target.name}{what}: {detail}",
            registry=target.registry,
            repository=target.repository,
        )

    def _send_once(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, target: Target
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        connection = self._connection(parts.scheme, parts.hostname or "", parts.port)
        all_headers = {"User-Agent": self.user_agent, **headers}
        for attempt in range(2):
            reused = connection.sock is not None
            try:
                connection.request(method, path, body=body, headers=all_headers)
                response = connection.getresponse()
                data = response.read(MAX_BODY_BYTES + 1)
            except _STALE_CONNECTION_ERRORS as exc:
                connection.close()
                if attempt == 0 and reused:
                    continue  # the server dropped an idle keep-alive connection; retry on a fresh one
                raise self._network_error(exc, url, target) from exc
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise self._network_error(exc, url, target) from exc
            if len(data) > MAX_BODY_BYTES:
                connection.close()
                raise RegistryResponseError(
                    f"registry {target.name} sent more than {MAX_BODY_BYTES} bytes for {url}",
                    registry=target.registry,
                    repository=target.repository,
                    status=response.status,
                )
            if response.will_close:
                connection.close()
            return Response(status=response.status, headers=response.headers, body=data, url=url)
        raise AssertionError("unreachable: the loop either returns or raises")

    def send(
        self,
        method: str,
        url: str,
        target: Target,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Send a request, following up to :data:`MAX_REDIRECTS` redirects.

        ``Authorization`` is dropped when a redirect changes scheme, host or port, so
        credentials meant for the registry never reach a third party.
        """
        current_headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(method, url, current_headers, body, target)
            location = response.header("Location")
            if response.status not in _REDIRECT_STATUSES or not location:
                return response
            next_url = urljoin(url, location)
            if _origin(next_url) != _origin(url):
                current_headers = {k: v for k, v in current_headers.items() if k.lower() != "authorization"}
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                current_headers = {k: v for k, v in current_headers.items() if k.lower() != "content-type"}
            url = next_url
        raise RegistryResponseError(
            f"registry {target.name} redirected more than {MAX_REDIRECTS} times (last to {url})",
            registry=target.registry,
            repository=target.repository,
        )
