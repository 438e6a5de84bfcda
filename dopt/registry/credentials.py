"""Registry credentials, found where ``docker login`` put them.

Users have already logged in with Docker; asking them to configure dopt again
would be a needless step and a second place for secrets.  So credentials come
from Docker's own ``config.json`` (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``), in the order the Docker CLI uses:

1. ``credHelpers[<registry>]``: run ``docker-credential-<helper> get``;
2. ``credsStore``: the same, with the default helper;
3. ``auths[<registry>]``: base64 ``auth`` (``user:password``), separate
   ``username``/``password`` fields, or an ``identitytoken``.

Docker Hub is stored under ``https://index.docker.io/v1/``, other registries
under their ``host[:port]``; ``auths`` keys written as URLs are matched by host.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import CredentialsError
from .reference import DEFAULT_DOMAIN, DOCKER_HUB_API_HOST, LEGACY_DEFAULT_DOMAIN

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
"""The key under which ``docker login`` stores Docker Hub credentials."""

_DOCKER_HUB_HOSTS = frozenset({DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, DOCKER_HUB_API_HOST})

# What a credential helper answers with for "registry not in my store", by convention.
_HELPER_NOT_FOUND = "credentials not found"

_HELPER_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one registry, plus where they came from (for messages).

    When ``identity_token`` is set the registry's token service must be asked with
    an OAuth2 refresh-token grant instead of a username and password.
    """

    username: str
    password: str
    source: str
    identity_token: str | None = None


def docker_config_dir() -> Path:
    """The directory holding Docker's ``config.json``, honouring ``DOCKER_CONFIG`` like Docker does."""
    configured = os.environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


def config_key(registry: str) -> str:
    """The ``config.json`` key Docker uses for ``registry`` (a ``host[:port]``)."""
    return DOCKER_HUB_CONFIG_KEY if registry in _DOCKER_HUB_HOSTS else registry


def _key_host(key: str) -> str:
    """Reduce an ``auths`` key such as ``https://host:5000/v1/`` to ``host:5000``."""
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    return key.split("/", 1)[0]


class DockerCredentialStore:
    """Looks up credentials in a Docker config directory; results are remembered per registry.

    Remembering matters because a credential helper is a process spawn, sometimes
    a keychain prompt, and one look-up run asks for the same registry many times.
    """

    def __init__(self, config_dir: Path | None = None) -> None:
        self.config_dir = config_dir if config_dir is not None else docker_config_dir()
        self._lock = threading.Lock()
        self._found: dict[str, Credentials | None] = {}

    @property
    def config_path(self) -> Path:
        """Path of the ``config.json`` this store reads."""
        return self.config_dir / "config.json"

    def get(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` (``host[:port]``), or ``None`` to go anonymous.

        Raises :class:`CredentialsError` if the configuration exists but cannot be
        used: unreadable JSON, a helper that is not installed or that fails.
        """
        key = config_key(registry)
        with self._lock:
            if key not in self._found:
                self._found[key] = self._look_up(key)
            return self._found[key]

    def _read_config(self) -> dict[str, object]:
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialsError(f"cannot read Docker config {self.config_path}: {exc}") from exc
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CredentialsError(
                f"Docker config {self.config_path} is not valid JSON ({exc}); fix or remove it"
            ) from exc
        if not isinstance(config, dict):
            raise CredentialsError(f"Docker config {self.config_path} must contain a JSON object")
        return config

    def _look_up(self, key: str) -> Credentials | None:
        config = self._read_config()
        helpers = config.get("credHelpers")
        helper = helpers.get(key) if isinstance(helpers, dict) else None
        if not helper:
            helper = config.get("credsStore")
        if isinstance(helper, str) and helper:
            found = self._from_helper(helper, key)
            if found is not None:
                return found
        auths = config.get("auths")
        if not isinstance(auths, dict):
            return None
        found_key = key if key in auths else None
        if found_key is None:
            host = _key_host(key) if key != DOCKER_HUB_CONFIG_KEY else None
            for candidate in auths:
                candidate_host = _key_host(candidate)
                if candidate_host == host or (host is None and candidate_host in _DOCKER_HUB_HOSTS):
                    found_key = candidate
                    break
        entry = auths.get(found_key) if found_key is not None else None
        return self._from_auths_entry(entry, found_key) if isinstance(entry, dict) and found_key else None

    def _from_auths_entry(self, entry: dict[str, object], key: str) -> Credentials | None:
        source = f"{self.config_path} (auths[{key!r}])"
        username = entry.get("username")
        password = entry.get("password")
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise CredentialsError(f"the 'auth' value in {source} is not valid base64: {exc}") from exc
            username, colon, password = decoded.partition(":")
            if not colon:
                raise CredentialsError(f"the 'auth' value in {source} must encode 'username:password'")
        token = entry.get("identitytoken")
        if isinstance(token, str) and token:
            return Credentials(
                username=username if isinstance(username, str) else "",
                password="",
                source=source,
                identity_token=token,
            )
        if isinstance(username, str) and isinstance(password, str) and (username or password):
            return Credentials(username=username, password=password, source=source)
        return None

    def _from_helper(self, helper: str, key: str) -> Credentials | None:
        program = f"docker-credential-{helper}"
        source = f"credential helper {program}"
        executable = shutil.which(program)
        if executable is None:
            raise CredentialsError(
                f"{self.config_path} names the {source} for {key}, but it is not installed "
                "(not on PATH); install it or remove it from config.json"
            )
        try:
            completed = subprocess.run(
                [executable, "get"],
                input=key,
                capture_output=True,
                text=True,
                timeout=_HELPER_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CredentialsError(f"{source} could not be run for {key}: {exc}") from exc
        if completed.returncode != 0:
            output = (completed.stdout.strip() or completed.stderr.strip()).splitlines()
            message = output[0] if output else f"exit status {completed.returncode}"
            if _HELPER_NOT_FOUND in message.lower():
                return None
            raise CredentialsError(f"{source} failed for {key}: {message}")
        try:
            answer = json.loads(completed.stdout)
            username, secret = answer["Username"], answer["Secret"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CredentialsError(f"{source} gave an unreadable answer for {key}: {exc}") from exc
        if not isinstance(username, str) or not isinstance(secret, str):
            raise CredentialsError(f"{source} gave a non-string username or secret for {key}")
        if username == "<token>":
            # Helpers store identity (refresh) tokens under this placeholder user name.
            return Credentials(username="", password="", source=source, identity_token=secret)
        return Credentials(username=username, password=secret, source=source)
