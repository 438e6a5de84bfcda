"""Registry authentication: challenges, bearer tokens and basic auth.

A registry says how it wants to be authenticated in the ``WWW-Authenticate``
header of a 401 answer:

* ``Basic realm="..."``: send ``Authorization: Basic base64(user:password)``;
* ``Bearer realm="https://auth.example/token",service="...",scope="..."``: ask
  the token service at ``realm`` (``GET realm?service=...&scope=...``, with basic
  credentials if we have any, anonymously otherwise; or an OAuth2 refresh-token
  ``POST`` when Docker stored an identity token) and send the ``token`` (or
  ``access_token``) it returns as ``Authorization: Bearer ...``.

Docker Hub always uses bearer tokens, even for anonymous pulls.  Tokens are
kept in memory until shortly before they expire, and once a registry's
challenge is known, later requests get their token up front instead of paying
for another 401 round trip.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from .credentials import Credentials, DockerCredentialStore
from .errors import AuthenticationError, CredentialsError, RegistryResponseError
from .reference import DOCKER_HUB_API_HOST
from .transport import Response, Target, Transport

TOKEN_CLIENT_ID = "dopt"
"""Sent as ``client_id`` in OAuth2 token requests, as the token protocol asks clients to."""

_MIN_TOKEN_LIFETIME_SECONDS = 60  # the token protocol's default when expires_in is missing or smaller
_TOKEN_EXPIRY_MARGIN_SECONDS = 10  # renew a little early so a token does not expire mid-request

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME_RE = re.compile(_TOKEN)
_PARAM_RE = re.compile(r"(" + _TOKEN + r")\s*=\s*(" + _TOKEN + r'|"(?:[^"\\]|\\.)*")')
_SEPARATORS_RE = re.compile(r"[\s,]*")


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: lowercase scheme and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(values: Sequence[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235) into challenges.

    Handles several challenges in one value, quoted strings with commas and
    backslash escapes, and case-insensitive scheme and parameter names.
    """
    challenges: list[Challenge] = []
    for value in values:
        position = 0
        current: Challenge | None = None
        while True:
            position = _SEPARATORS_RE.match(value, position).end()  # type: ignore[union-attr]
            if position >= len(value):
                break
            param = _PARAM_RE.match(value, position)
            if param is not None and current is not None:
                raw = param.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                current.params[param.group(1).lower()] = raw
                position = param.end()
                continue
            scheme = _SCHEME_RE.match(value, position)
            if scheme is None:
                break  # malformed remainder: keep what was understood
            current = Challenge(scheme=scheme.group(0).lower())
            challenges.append(current)
            position = scheme.end()
    return challenges


def _basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def repository_scope(repository: str) -> str:
    """The token scope for pulling (reading) ``repository``."""
    return f"repository:{repository}:pull"


def login_hint(registry: str) -> str:
    """The ``docker login`` command for ``registry``; Docker Hub needs no argument."""
    return "docker login" if registry == DOCKER_HUB_API_HOST else f"docker login {registry}"


class Authenticator:
    """Turns challenges into ``Authorization`` headers, remembering tokens and challenges."""

    def __init__(self, transport: Transport, credential_store: DockerCredentialStore) -> None:
        self._transport = transport
        self._credential_store = credential_store
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str, tuple[str, ...], str], tuple[str, float]] = {}
        self._credentials: dict[str, Credentials | None] = {}
        self._credential_problems: dict[str, str] = {}

    def credentials(self, registry: str) -> Credentials | None:
        """Credentials for ``registry``; a broken helper or config downgrades to anonymous.

        Public images must stay reachable when, say, a config copied from another
        machine names a helper that is not installed here; the problem is kept and
        reported if the registry then refuses us (see :meth:`credential_problem`).
        """
        with self._lock:
            if registry in self._credentials:
                return self._credentials[registry]
        try:
            found = self._credential_store.get(registry)
        except CredentialsError as exc:
            found = None
            with self._lock:
                self._credential_problems[registry] = str(exc)
        with self._lock:
            self._credentials[registry] = found
        return found

    def credential_problem(self, registry: str) -> str | None:
        """Why credentials for ``registry`` could not be read, if they could not."""
        with self._lock:
            return self._credential_problems.get(registry)

    def known_header(self, target: Target, scopes: Sequence[str]) -> str | None:
        """An ``Authorization`` header for a registry whose challenge was seen before."""
        with self._lock:
            challenge = self._challenges.get(target.registry)
        if challenge is None:
            return None
        return self._header_for(challenge, target, scopes)

    def answer(self, target: Target, response: Response, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` header that answers ``response``'s 401 challenge.

        Returns ``None`` when there is nothing better to send (no credentials for a
        Basic challenge, or no challenge we understand), so the caller reports 401.
        """
        challenges = parse_www_authenticate(response.headers.get_all("WWW-Authenticate") or [])
        by_scheme = {challenge.scheme: challenge for challenge in challenges}
        challenge = by_scheme.get("bearer") or by_scheme.get("basic")
        if challenge is None:
            return None
        with self._lock:
            self._challenges[target.registry] = challenge
        if challenge.scheme == "bearer" and "scope" in challenge.params:
            # The registry says exactly which access it wants; ask for that.
            scopes = challenge.params["scope"].split()
        # A 401 may mean a remembered token was revoked or expired early: get a new one.
        return self._header_for(challenge, target, scopes, fresh=True)

    def _header_for(
        self, challenge: Challenge, target: Target, scopes: Sequence[str], *, fresh: bool = False
    ) -> str | None:
        credentials = self.credentials(target.registry)
        if challenge.scheme == "basic":
            if credentials is None or credentials.identity_token is not None:
                return None
            return _basic_header(credentials)
        token = self._token(challenge, target, tuple(scopes), credentials, fresh=fresh)
        return f"Bearer {token}"

    def _token(
        self,
        challenge: Challenge,
        target: Target,
        scopes: tuple[str, ...],
        credentials: Credentials | None,
        *,
        fresh: bool,
    ) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryResponseError(
                f"registry {target.name} asked for a bearer token without saying where to get it "
                "(no realm in WWW-Authenticate)",
                registry=target.registry,
                repository=target.repository,
                status=401,
            )
        service = challenge.params.get("service", "")
        who = credentials.source if credentials else "anonymous"
        key = (realm, service, scopes, who)
        with self._lock:
            cached = self._tokens.get(key)
        if not fresh and cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token, lifetime = self._fetch_token(realm, service, scopes, credentials, target)
        expires = time.monotonic() + max(lifetime, _MIN_TOKEN_LIFETIME_SECONDS) - _TOKEN_EXPIRY_MARGIN_SECONDS
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    def _fetch_token(
        self,
        realm: str,
        service: str,
        scopes: tuple[str, ...],
        credentials: Credentials | None,
        target: Target,
    ) -> tuple[str, float]:
        if credentials is not None and credentials.identity_token is not None:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "service": service,
                "client_id": TOKEN_CLIENT_ID,
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            response = self._transport.send(
                "POST",
                realm,
                target,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=urlencode(form).encode("ascii"),
            )
        else:
            query: list[tuple[str, str]] = []
            if service:
                query.append(("service", service))
            query.extend(("scope", scope) for scope in scopes)
            headers = {}
            if credentials is not None:
                query.append(("account", credentials.username))
                headers["Authorization"] = _basic_header(credentials)
            parts = urlsplit(realm)
            joined = "&".join(filter(None, [parts.query, urlencode(query)]))
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
            response = self._transport.send("GET", url, target, headers=headers)

        if response.status in (401, 403):
            problem = self.credential_problem(target.registry)
            if credentials is not None:
                detail = (
                    f"the token service {realm} rejected the credentials from {credentials.source} "
                    f"(HTTP {response.status}); check them with `{login_hint(target.registry)}`"
                )
            else:
                detail = (
                    f"the token service {realm} refused anonymous access (HTTP {response.status}); "
                    f"log in with `{login_hint(target.registry)}`"
                )
                if problem:
                    detail += f" (stored credentials could not be used: {problem})"
            raise AuthenticationError(
                f"cannot authenticate to registry {target.name} for {target.repository or 'its API'}: {detail}",
                registry=target.registry,
                repository=target.repository,
            )
        if response.status != 200:
            raise RegistryResponseError(
                f"the token service {realm} of registry {target.name} answered HTTP {response.status}; try again later",
                registry=target.registry,
                repository=target.repository,
                status=response.status,
            )
        data = response.json(target)
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryResponseError(
                f"the token service {realm} of registry {target.name} sent no token",
                registry=target.registry,
                repository=target.repository,
                status=response.status,
            )
        lifetime = data.get("expires_in") if isinstance(data, dict) else None
        return token, float(lifetime) if isinstance(lifetime, int | float) else _MIN_TOKEN_LIFETIME_SECONDS
