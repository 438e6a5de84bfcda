"""The exceptions registry look-ups raise.

Everything a registry look-up can go wrong with is a :class:`RegistryError`, so a
caller pinning many ``FROM`` lines can catch one class, report the message for
the line that failed and carry on.  Messages name the registry and repository and
say what the user can do about it, because they end up in front of someone
editing a Dockerfile, not someone debugging HTTP.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class: a registry look-up failed; ``str()`` is a complete, actionable message."""

    def __init__(self, message: str, *, registry: str | None = None, repository: str | None = None) -> None:
        super().__init__(message)
        self.registry = registry
        self.repository = repository


class RegistryUnreachableError(RegistryError):
    """The registry could not be reached: DNS, refused connection, timeout or TLS failure."""


class AuthenticationError(RegistryError):
    """The registry wants credentials (HTTP 401) that were missing or were rejected."""


class AccessDeniedError(RegistryError):
    """The registry knows who we are and still refuses (HTTP 403)."""


class NotFoundError(RegistryError):
    """The repository, tag or digest does not exist (HTTP 404)."""


class RepositoryNotFoundError(NotFoundError):
    """The registry does not know the repository at all."""


class ManifestNotFoundError(NotFoundError):
    """The repository exists but has no such tag or digest."""


class RateLimitError(RegistryError):
    """The registry is throttling us (HTTP 429); ``retry_after`` is in seconds when it said."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        repository: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, registry=registry, repository=repository)
        self.retry_after = retry_after


class RegistryResponseError(RegistryError):
    """The registry answered, but not in a way the distribution API allows (5xx, bad JSON...)."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        repository: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, registry=registry, repository=repository)
        self.status = status


class CredentialsError(RegistryError):
    """Docker's credential configuration could not be read (bad config.json, failing helper)."""


class NotInCacheError(RegistryError):
    """Offline mode was asked for something the disk cache does not hold."""
