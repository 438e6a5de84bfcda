"""A client for the OCI distribution (Docker registry v2) API, standard library only.

It answers the questions tag pinning asks: which tags does a repository have,
and which manifest digest does a tag point to right now.  It works with any
registry that implements the distribution spec: Docker Hub (with its
``registry-1.docker.io`` host, ``library/`` namespace and token service), GHCR,
Quay, a private ``registry:2`` and so on.

* Digests come from ``HEAD`` on the manifest with every manifest media type in
  ``Accept``, so a multi-arch image reports its index digest, which is what a
  ``FROM image@sha256:...`` line must name to stay multi-arch.  HEAD requests do
  not count against Docker Hub's pull rate limit; GET requests do.
* Answers are cached on disk (see :mod:`dopt.registry.cache`); ``offline=True``
  answers from the cache alone.
* Tag digests for many tags are fetched concurrently on a thread pool.
* Every failure is a :class:`~dopt.registry.errors.RegistryError` whose message
  names the registry and repository and says what to do.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urljoin

from dopt import __version__

from .auth import Authenticator, login_hint, parse_www_authenticate, repository_scope
from .cache import DiskCache
from .credentials import DockerCredentialStore
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    ManifestNotFoundError,
    NotFoundError,
    NotInCacheError,
    RateLimitError,
    RegistryError,
    RegistryResponseError,
    RepositoryNotFoundError,
)
from .reference import DOCKER_HUB_API_HOST, Reference, parse_reference
from .transport import (
    DEFAULT_TIMEOUT_SECONDS,
    Response,
    Target,
    Transport,
    daemon_insecure_registries,
    uses_plain_http,
)

_log = logging.getLogger(__name__)

MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX})
"""Media types of multi-platform images; their digest is the one to pin."""

MANIFEST_ACCEPT = ", ".join(
    (
        MEDIA_TYPE_DOCKER_MANIFEST_LIST,
        MEDIA_TYPE_OCI_INDEX,
        MEDIA_TYPE_DOCKER_MANIFEST,
        MEDIA_TYPE_OCI_MANIFEST,
    )
)
"""Without the index types in ``Accept`` a registry may answer with one platform's manifest."""

DEFAULT_PAGE_SIZE = 1000
"""Tags asked for per page; registries cap ``n`` (often at 1000) and page with ``Link`` headers."""

DEFAULT_MAX_WORKERS = 8
_MAX_PAGES = 10_000


@dataclass(frozen=True)
class ManifestDescriptor:
    """What a tag or digest points to: manifest digest, media type and size in bytes."""

    digest: str
    media_type: str
    size: int | None = None

    @property
    def is_index(self) -> bool:
        """Whether this is a multi-platform image (Docker manifest list or OCI index)."""
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class Manifest:
    """A manifest as served, with its verified digest."""

    descriptor: ManifestDescriptor
    content: bytes

    def json(self) -> dict[str, object]:
        """The manifest document."""
        data = json.loads(self.content)
        if not isinstance(data, dict):
            raise ValueError("a manifest must be a JSON object")
        return data


def _as_reference(reference: Reference | str) -> Reference:
    return reference if isinstance(reference, Reference) else parse_reference(reference)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _media_type(response: Response) -> str:
    return (response.header("Content-Type") or "").split(";", 1)[0].strip()


def _error_codes(response: Response) -> list[tuple[str, str]]:
    """The ``(code, message)`` pairs of a distribution-spec error body, if it has one."""
    try:
        data = json.loads(response.body)
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [(str(error.get("code", "")), str(error.get("message", ""))) for error in errors if isinstance(error, dict)]


def _retry_after(response: Response) -> float | None:
    value = response.header("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _next_link(response: Response) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header, resolved against the request URL."""
    for value in response.headers.get_all("Link") or []:
        for link in value.split(","):
            target, _, params = link.partition(";")
            target = target.strip()
            if not (target.startswith("<") and target.endswith(">")):
                continue
            relations = [
                param.split("=", 1)[1].strip().strip('"').split()
                for param in params.split(";")
                if param.strip().lower().startswith("rel=")
            ]
            if any("next" in rel for rel in relations):
                return urljoin(response.url, target[1:-1])
    return None


class RegistryClient:
    """Reads tags and manifests from registries, with auth, caching and concurrency.

    Use it as a context manager (or call :meth:`close`) to release its threads
    and connections.  Arguments:

    ``cache``: where answers are kept; defaults to a :class:`DiskCache` in
    ``~/.cache/dopt/registry`` with a one-hour TTL.
    ``offline``: answer only from the cache, raising :class:`NotInCacheError` otherwise.
    ``insecure_registries``: ``host[:port]`` names or CIDR ranges reached over plain
    HTTP; ``None`` reads them from ``/etc/docker/daemon.json`` like Docker does.
    ``docker_config_dir``: where ``config.json`` lives; defaults to ``$DOCKER_CONFIG``
    or ``~/.docker``.
    """

    def __init__(
        self,
        *,
        cache: DiskCache | None = None,
        offline: bool = False,
        insecure_registries: Iterable[str] | None = None,
        docker_config_dir: Path | str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_workers: int = DEFAULT_MAX_WORKERS,
        page_size: int | None = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.cache = cache if cache is not None else DiskCache()
        self.offline = offline
        self.page_size = page_size
        self.max_workers = max_workers
        self.insecure_registries = tuple(
            daemon_insecure_registries() if insecure_registries is None else insecure_registries
        )
        self._transport = Transport(timeout=timeout, user_agent=f"dopt/{__version__}")
        store = DockerCredentialStore(Path(docker_config_dir) if docker_config_dir is not None else None)
        self._auth = Authenticator(self._transport, store)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dopt-registry")

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads and close all connections."""
        self._executor.shutdown(wait=True)
        self._transport.close()

    # -- plumbing ---------------------------------------------------------------

    def _base_url(self, registry: str) -> str:
        scheme = "http" if uses_plain_http(registry, self.insecure_registries) else "https"
        return f"{scheme}://{registry}"

    def _cached(self, key: str, target: Target, description: str, *, immutable: bool = False) -> object | None:
        if self.offline:
            entry = self.cache.read(key)
            if entry is None:
                raise NotInCacheError(
                    f"offline mode: {description} of {target.name}/{target.repository} is not in the cache "
                    f"at {self.cache.directory}; run once with network access to fill the cache",
                    registry=target.registry,
                    repository=target.repository,
                )
            return entry.value
        return self.cache.get(key, immutable=immutable)

    def _store(self, key: str, value: object) -> None:
        try:
            self.cache.put(key, value)
        except OSError as exc:
            # The cache only saves time; failing to write it must not fail the look-up.
            _log.warning("cannot write registry cache in %s: %s", self.cache.directory, exc)

    def _call(self, target: Target, method: str, url: str, what: str, *, accept: str | None = None) -> Response:
        """Send an authenticated request and turn every non-2xx answer into a clear error."""
        scopes = [repository_scope(target.repository)] if target.repository else []
        headers = {"Accept": accept} if accept else {}
        authorization = self._auth.known_header(target, scopes)
        if authorization:
            headers["Authorization"] = authorization
        response = self._transport.send(method, url, target, headers=headers)
        if response.status == 401:
            authorization = self._auth.answer(target, response, scopes)
            if authorization is not None:
                headers["Authorization"] = authorization
                response = self._transport.send(method, url, target, headers=headers)
        if 200 <= response.status < 300:
            return response
        raise self._error(target, response, what)

    def _error(self, target: Target, response: Response, what: str) -> RegistryError:
        status = response.status
        codes = _error_codes(response)
        code_names = {code for code, _ in codes}
        said = "; ".join(f"{code}: {message}" if message else code for code, message in codes)
        said = f" (registry said {said})" if said else ""
        where = f"{target.name}/{target.repository}" if target.repository else target.name
        context = {"registry": target.registry, "repository": target.repository}
        hub = target.registry == DOCKER_HUB_API_HOST
        if status == 401:
            credentials = self._auth.credentials(target.registry)
            if credentials is not None:
                message = (
                    f"{where}: the registry rejected the credentials from {credentials.source} "
                    f"(HTTP 401){said}; check them with `{login_hint(target.registry)}` and that the "
                    "account may pull this repository"
                )
            else:
                maybe_missing = " or the repository does not exist" if hub else ""
                message = (
                    f"{where}: the registry requires authentication{maybe_missing} (HTTP 401){said}; "
                    f"log in with `{login_hint(target.registry)}`"
                )
                problem = self._auth.credential_problem(target.registry)
                if problem:
                    message += f" (stored credentials could not be used: {problem})"
            return AuthenticationError(message, **context)
        if status == 403:
            return AccessDeniedError(
                f"{where}: access denied (HTTP 403){said}; the account in use may lack pull permission "
                f"for this repository, check it with `{login_hint(target.registry)}`",
                **context,
            )
        if status == 404:
            if "NAME_UNKNOWN" in code_names:
                return RepositoryNotFoundError(
                    f"repository {target.repository} not found on {target.name}{said}; check the image name",
                    **context,
                )
            if "MANIFEST_UNKNOWN" in code_names or "TAG_INVALID" in code_names:
                return ManifestNotFoundError(
                    f"{what} not found in {where}{said}; check the tag exists in the registry",
                    **context,
                )
            return NotFoundError(f"{what} not found in {where} (HTTP 404){said}", **context)
        if status == 429:
            retry_after = _retry_after(response)
            wait = f"wait {retry_after:.0f}s" if retry_after is not None else "wait a while"
            advice = f"{wait}, use the cache (offline mode) or log in with `{login_hint(target.registry)}`"
            if hub:
                advice += " (authenticated Docker Hub users get a higher limit)"
            return RateLimitError(
                f"{where}: rate limit reached (HTTP 429){said}; {advice}", retry_after=retry_after, **context
            )
        if status >= 500:
            return RegistryResponseError(
                f"{where}: the registry failed with HTTP {status} while fetching {what}{said}; try again later",
                status=status,
                **context,
            )
        return RegistryResponseError(
            f"{where}: unexpected HTTP {status} while fetching {what}{said}", status=status, **context
        )

    def _missing(self, ref: Reference, target: Target, what: str, error: NotFoundError) -> NotFoundError:
        """Tell a missing repository from a missing tag, and suggest tags that do exist.

        A HEAD answer has no body, and registries commonly say MANIFEST_UNKNOWN for
        an unknown repository too, so the tag list is asked (it is cached anyway).
        """
        if isinstance(error, RepositoryNotFoundError):
            return error
        try:
            tags = self.list_tags(ref)
        except RepositoryNotFoundError as exc:
            return exc
        except RegistryError:
            return error
        hint = ""
        if ref.digest is None:
            close = difflib.get_close_matches(ref.tag_or_default, tags, n=5, cutoff=0.6)
            hint = f"; similar tags that exist: {', '.join(close)}" if close else f" ({len(tags)} other tags)"
        return ManifestNotFoundError(
            f"{what} not found in {target.name}/{ref.repository}{hint}",
            registry=ref.registry,
            repository=ref.repository,
        )

    # -- API --------------------------------------------------------------------

    def ping(self, registry: str) -> str | None:
        """Check that ``registry`` (``host[:port]``) serves the v2 API.

        Returns the authentication scheme it demands (``"bearer"``, ``"basic"``) or
        ``None`` if it is open.  Raises :class:`RegistryUnreachableError` if it cannot
        be reached, :class:`RegistryResponseError` if it is not a v2 registry.
        """
        target = Target(registry=registry)
        if self.offline:
            raise NotInCacheError(
                f"offline mode: cannot contact registry {target.name}", registry=registry, repository=None
            )
        response = self._transport.send("GET", f"{self._base_url(registry)}/v2/", target)
        if response.status == 401:
            challenges = parse_www_authenticate(response.headers.get_all("WWW-Authenticate") or [])
            return challenges[0].scheme if challenges else "unknown"
        if response.status == 200:
            return None
        raise RegistryResponseError(
            f"{target.name} answered HTTP {response.status} at /v2/: it does not look like a Docker/OCI "
            "registry (check the host and port)",
            registry=registry,
            status=response.status,
        )

    def list_tags(self, reference: Reference | str) -> list[str]:
        """All tags of the reference's repository, following pagination to the end."""
        ref = _as_reference(reference)
        target = Target(registry=ref.registry, repository=ref.repository)
        key = f"tags\n{ref.registry}\n{ref.repository}"
        cached = self._cached(key, target, "the tag list")
        if isinstance(cached, list):
            return [str(tag) for tag in cached]

        url = f"{self._base_url(ref.registry)}/v2/{ref.repository}/tags/list"
        if self.page_size:
            url += f"?n={self.page_size}"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            seen.add(url)
            response = self._call(target, "GET", url, "the tag list")
            data = response.json(target)
            page = data.get("tags") if isinstance(data, dict) else None
            if page is not None and not (isinstance(page, list) and all(isinstance(t, str) for t in page)):
                raise RegistryResponseError(
                    f"{target.name}/{ref.repository}: the tag list is not a list of strings",
                    registry=ref.registry,
                    repository=ref.repository,
                    status=response.status,
                )
            tags.extend(page or [])  # an empty repository may say "tags": null
            next_url = _next_link(response)
            if next_url is None:
                break
            if next_url in seen:
                raise RegistryResponseError(
                    f"{target.name}/{ref.repository}: the tag list pagination loops back to {next_url}",
                    registry=ref.registry,
                    repository=ref.repository,
                )
            url = next_url
        unique = list(dict.fromkeys(tags))
        self._store(key, unique)
        return unique

    def head_manifest(self, reference: Reference | str) -> ManifestDescriptor:
        """What the reference's tag (or digest) points to now, without downloading the manifest.

        A reference without tag or digest means ``latest``.  Falls back to a GET when
        the registry does not send ``Docker-Content-Digest``.
        """
        ref = _as_reference(reference)
        target = Target(registry=ref.registry, repository=ref.repository)
        pointer = ref.digest or ref.tag_or_default
        what = f"digest {pointer}" if ref.digest else f"tag {pointer!r}"
        key = f"head\n{ref.registry}\n{ref.repository}\n{pointer}"
        cached = self._cached(key, target, f"the manifest of {what}", immutable=ref.digest is not None)
        if isinstance(cached, dict):
            return ManifestDescriptor(**cached)

        url = f"{self._base_url(ref.registry)}/v2/{ref.repository}/manifests/{quote(pointer, safe=':')}"
        try:
            response = self._call(target, "HEAD", url, what, accept=MANIFEST_ACCEPT)
        except NotFoundError as exc:
            raise self._missing(ref, target, what, exc) from None
        digest = response.header("Docker-Content-Digest")
        if not digest:
            return self.get_manifest(ref).descriptor
        if ref.digest and digest != ref.digest:
            raise RegistryResponseError(
                f"{target.name}/{ref.repository}: asked for {ref.digest} but the registry answered {digest}",
                registry=ref.registry,
                repository=ref.repository,
            )
        length = response.header("Content-Length")
        descriptor = ManifestDescriptor(
            digest=digest,
            media_type=_media_type(response),
            size=int(length) if length and length.isdigit() else None,
        )
        self._store(key, {"digest": descriptor.digest, "media_type": descriptor.media_type, "size": descriptor.size})
        return descriptor

    def get_manifest(self, reference: Reference | str) -> Manifest:
        """Download the manifest a tag (or digest) points to, verifying its digest."""
        ref = _as_reference(reference)
        target = Target(registry=ref.registry, repository=ref.repository)
        pointer = ref.digest or ref.tag_or_default
        what = f"digest {pointer}" if ref.digest else f"tag {pointer!r}"
        key = f"manifest\n{ref.registry}\n{ref.repository}\n{pointer}"
        cached = self._cached(key, target, f"the manifest of {what}", immutable=ref.digest is not None)
        if isinstance(cached, dict):
            descriptor = ManifestDescriptor(**cached["descriptor"])
            return Manifest(descriptor=descriptor, content=cached["content"].encode("utf-8"))

        url = f"{self._base_url(ref.registry)}/v2/{ref.repository}/manifests/{quote(pointer, safe=':')}"
        try:
            response = self._call(target, "GET", url, what, accept=MANIFEST_ACCEPT)
        except NotFoundError as exc:
            raise self._missing(ref, target, what, exc) from None
        computed = _sha256(response.body)
        stated = response.header("Docker-Content-Digest")
        expected = ref.digest or stated
        if expected and expected.startswith("sha256:") and expected != computed:
            raise RegistryResponseError(
                f"{target.name}/{ref.repository}: the manifest of {what} has digest {computed}, "
                f"not {expected}: the registry or something between us altered it",
                registry=ref.registry,
                repository=ref.repository,
            )
        descriptor = ManifestDescriptor(
            digest=expected or computed, media_type=_media_type(response), size=len(response.body)
        )
        try:
            text = response.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # not JSON text; serve it, but do not cache it
        if text is not None:
            self._store(
                key,
                {
                    "descriptor": {
                        "digest": descriptor.digest,
                        "media_type": descriptor.media_type,
                        "size": descriptor.size,
                    },
                    "content": text,
                },
            )
        return Manifest(descriptor=descriptor, content=response.body)

    def digests(self, reference: Reference | str, tags: Iterable[str]) -> dict[str, ManifestDescriptor]:
        """What each of ``tags`` in the reference's repository points to, looked up concurrently.

        Tags that no longer exist (deleted since the tag list was read) are left
        out; any other failure is raised.
        """
        ref = _as_reference(reference).with_digest(None)
        futures = {tag: self._executor.submit(self.head_manifest, ref.with_tag(tag)) for tag in dict.fromkeys(tags)}
        found: dict[str, ManifestDescriptor] = {}
        failure: RegistryError | None = None
        for tag, future in futures.items():
            try:
                found[tag] = future.result()
            except ManifestNotFoundError:
                continue
            except RegistryError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return found
