"""Registry look-ups for the base-image rules, done once, before the rules run.

Rules are pure: they never touch the network. So the command line (or a library caller) asks
the registries first, for every ``FROM`` image of the Dockerfiles it is about to check, and hands
the answers to the rules through their options::

    lookups = resolve_for_documents([text], policy=PinPolicy(PinMode.BOTH), update=True)
    settings = settings.merged(rule_options=lookups.options())

``lookups.options()`` holds three keys the DO4xx rules read:

* ``registry-resolutions``: reference text (as the ``FROM`` line means it, ARG defaults applied)
  → :class:`~dopt.registry.resolve.Resolution`, or the error that stopped the look-up;
* ``registry-updates``: for references that are already pinned, what their release line points
  to now (``python:3.11.4-slim`` → what ``python:3.11-slim`` is today), for the outdated-pin rule;
* ``registry-stale``: references answered offline from cache entries older than the cache TTL.

Look-ups run concurrently, are cached on disk (see :mod:`.cache`), can be served from the cache
alone (``offline``) and can go through registry mirrors, as Docker's ``registry-mirrors``
daemon setting does: a ``docker.io`` image is looked up at the mirror first and at Docker Hub
only if the mirror fails, so the digest pinned is the one a builder using that mirror pulls.

:func:`registry_options` is the whole command-line hook: it reads the user's ``[tool.dopt.rules]``
(and command-line) settings, does nothing unless pinning was asked for, and returns the options
to merge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import errors as _errors
from .errors import RegistryError
from .reference import (
    DEFAULT_DOMAIN,
    DOCKER_HUB_API_HOST,
    LEGACY_DEFAULT_DOMAIN,
    InvalidReferenceError,
    Reference,
    Specificity,
    parse_reference,
    split_tag,
)
from .resolve import PinMode, PinPolicy, Resolution, TagChoice, _explain, pin_reference, resolve

if TYPE_CHECKING:
    from .cache import DiskCache
    from .client import RegistryClient

# The HTTP client, TLS and thread pools are imported where look-ups happen: rules import this
# module for its option names and result types, and must stay cheap to load.

# Keys of ``[tool.dopt.rules]`` (and of the options the command line adds).
PIN = "pin"  # "tag", "digest" or "both": pin FROM images (turns registry look-ups on)
PIN_SPECIFICITY = "pin-specificity"  # "major", "minor" or "patch"
UPDATE_PINS = "update-pins"  # true: also look up what pinned images' release lines point to now
OFFLINE = "registry-offline"  # true: answer from the cache only
MIRRORS = "registry-mirrors"  # {"docker.io" = ["https://mirror.example.com"]}
MIRROR_FALLBACK = "registry-mirror-fallback"  # false: never fall back from a mirror to the registry
CACHE_DIR = "registry-cache-dir"
TRUSTED_REGISTRIES = "trusted-registries"

# Keys of the look-up results in the rules' options.
RESOLUTIONS = "registry-resolutions"
UPDATES = "registry-updates"
STALE = "registry-stale"

Lookup = Resolution | RegistryError | InvalidReferenceError
"""The outcome of one look-up: a resolution, or the error that explains why there is none."""


# ---------------------------------------------------------------------------------------------
# Settings


def policy_from_options(options: Mapping[str, Any]) -> PinPolicy:
    """The :class:`PinPolicy` that ``pin`` and ``pin-specificity`` ask for (defaults: both, patch).

    Raises ``ValueError`` naming the setting when a value is not one of the allowed words.
    """
    pin = options.get(PIN, PinMode.BOTH.value)
    specificity = options.get(PIN_SPECIFICITY, Specificity.PATCH.name.lower())
    try:
        mode = PinMode(str(pin).strip().lower())
    except ValueError:
        raise ValueError(f"'{PIN}' must be one of tag, digest, both; got {pin!r}") from None
    try:
        level = Specificity.parse(str(specificity))
    except ValueError:
        raise ValueError(f"'{PIN_SPECIFICITY}' must be one of major, minor, patch; got {specificity!r}") from None
    return PinPolicy(pin=mode, specificity=level)


def pinning_requested(options: Mapping[str, Any]) -> bool:
    """Whether the settings ask for registry look-ups (``pin`` set, or ``update-pins`` on)."""
    return options.get(PIN) is not None or bool(options.get(UPDATE_PINS))


def update_line(reference: Reference) -> Reference | None:
    """The floating tag a pinned reference's updates come from, or None if it has none.

    The line keeps every version part but the last, and the variant: ``3.11.4-slim`` follows
    ``3.11-slim``, ``12.5`` follows ``12``, ``v1.2.3`` follows ``v1.2``. A tag with one version
    part (``3``, ``20-alpine``) or none (``bookworm``) can only be refreshed to a new digest.
    """
    if reference.tag is None:
        return None
    parsed = split_tag(reference.tag)
    if parsed.specificity < 2:
        return None
    version = ".".join(str(part) for part in parsed.version[:-1])
    tag = f"{parsed.prefix}{version}" + (f"-{parsed.variant}" if parsed.variant else "")
    return reference.with_digest(None).with_tag(tag)


def _normalise_registry(name: str) -> str:
    host = name.strip().lower()
    host = host.split("://", 1)[-1].rstrip("/")
    if host in (LEGACY_DEFAULT_DOMAIN, DOCKER_HUB_API_HOST, f"{LEGACY_DEFAULT_DOMAIN}/v1"):
        return DEFAULT_DOMAIN
    return host


@dataclass(frozen=True)
class Mirror:
    """One mirror endpoint: ``host[:port]``, and whether it was given as plain ``http://``."""

    host: str
    plain_http: bool = False


def parse_mirrors(mirrors: Mapping[str, str | Sequence[str]] | Sequence[str] | None) -> dict[str, tuple[Mirror, ...]]:
    """Normalise mirror settings to ``{registry: (Mirror, ...)}``.

    Accepts a mapping from a registry (``docker.io``; ``index.docker.io`` and Docker Hub's API host
    mean the same) to one or more mirror URLs (``https://mirror.gcr.io``, ``http://10.0.0.5:5000``,
    or a bare ``host:port``), or a plain list of URLs, which, as Docker's ``registry-mirrors``,
    are mirrors of Docker Hub. Raises ``ValueError`` for a URL with a path or a bad scheme.
    """
    if not mirrors:
        return {}
    pairs: list[tuple[str, str]]
    if isinstance(mirrors, Mapping):
        pairs = []
        for registry, urls in mirrors.items():
            for url in [urls] if isinstance(urls, str) else list(urls):
                pairs.append((str(registry), str(url)))
    else:
        pairs = [(DEFAULT_DOMAIN, str(url)) for url in mirrors]
    parsed: dict[str, list[Mirror]] = {}
    for registry, url in pairs:
        text = url.strip()
        scheme = ""
        if "://" in text:
            scheme, _, text = text.partition("://")
            scheme = scheme.lower()
            if scheme not in ("http", "https"):
                raise ValueError(f"registry mirror {url!r}: the scheme must be http or https")
        parts = urlsplit(f"//{text}")
        if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.netloc:
            raise ValueError(f"registry mirror {url!r}: give a host[:port] (with http:// or https://), no path")
        parsed.setdefault(_normalise_registry(registry), []).append(Mirror(parts.netloc, scheme == "http"))
    return {registry: tuple(found) for registry, found in parsed.items()}


def daemon_registry_mirrors(path: Path | None = None) -> tuple[str, ...]:
    """The ``registry-mirrors`` of the local Docker daemon's config (Docker Hub mirrors), if readable."""
    from .transport import DAEMON_CONFIG_PATH

    path = path or DAEMON_CONFIG_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    mirrors = data.get("registry-mirrors") if isinstance(data, dict) else None
    if not isinstance(mirrors, list):
        return ()
    return tuple(str(m) for m in mirrors if isinstance(m, str))


# ---------------------------------------------------------------------------------------------
# Which references a document names


def image_references(document: object) -> list[Reference]:
    """The external images the ``FROM`` lines of ``document`` (text or parsed) build on.

    ARGs in FROM lines are resolved through their defaults; stages built on earlier stages,
    ``scratch``, FROMs whose ARGs have no default and invalid references are left out.
    """
    from dopt.optimizer.semantic import build_model
    from dopt.optimizer.syntax import DockerfileSyntaxError, Document, parse

    if isinstance(document, Document):
        doc = document
    else:
        try:
            doc = parse(str(document))
        except DockerfileSyntaxError:
            return []
    found: list[Reference] = []
    for stage in build_model(doc).stages:
        ref = stage.reference
        if ref is not None:
            found.append(ref)
    return found


def reference_key(reference: Reference) -> str:
    """The key of a reference in the look-up mappings: the reference as written (ARGs applied)."""
    return str(reference)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class PinLookups:
    """What the registries said about the references of a set of Dockerfiles."""

    resolutions: dict[str, Lookup] = field(default_factory=dict)
    updates: dict[str, Lookup] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)

    def options(self) -> dict[str, Any]:
        """The rule options carrying these results (merge them into ``Settings.rule_options``)."""
        return {RESOLUTIONS: dict(self.resolutions), UPDATES: dict(self.updates), STALE: frozenset(self.stale)}

    def merged(self, other: PinLookups) -> PinLookups:
        return PinLookups(
            {**self.resolutions, **other.resolutions}, {**self.updates, **other.updates}, self.stale | other.stale
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (errors keep their class name and message), read back by :meth:`from_json`."""
        return {
            "resolutions": {key: _lookup_to_json(value) for key, value in self.resolutions.items()},
            "updates": {key: _lookup_to_json(value) for key, value in self.updates.items()},
            "stale": sorted(self.stale),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PinLookups:
        """Results saved by :meth:`to_json` (or written by hand for tests)."""
        return cls(
            {key: _lookup_from_json(key, value) for key, value in dict(data.get("resolutions", {})).items()},
            {key: _lookup_from_json(key, value) for key, value in dict(data.get("updates", {})).items()},
            {str(key) for key in data.get("stale", [])},
        )


def _lookup_to_json(value: Lookup) -> dict[str, Any]:
    if isinstance(value, Resolution):
        return {
            "pinned": str(value.pinned),
            "digest": value.digest,
            "media_type": value.media_type,
            "tag": value.tag,
            "sharing_tags": list(value.sharing_tags),
            "explanation": value.explanation,
        }
    return {"error": type(value).__name__, "message": str(value)}


def _lookup_from_json(key: str, data: Mapping[str, Any]) -> Lookup:
    if "error" in data:
        name = str(data["error"])
        message = str(data.get("message", ""))
        if name == "InvalidReferenceError":
            return InvalidReferenceError(key, message)
        cls = getattr(_errors, name, RegistryError)
        if not (isinstance(cls, type) and issubclass(cls, RegistryError)):
            cls = RegistryError
        return cls(message)
    return Resolution(
        original=parse_reference(key),
        pinned=parse_reference(str(data["pinned"])),
        digest=data.get("digest"),
        media_type=data.get("media_type"),
        tag=data.get("tag"),
        sharing_tags=tuple(data.get("sharing_tags", ())),
        explanation=str(data.get("explanation", "")),
    )


# ---------------------------------------------------------------------------------------------
# Look-ups


def _via(reference: Reference, host: str) -> Reference:
    """The same repository, tag and digest at another registry host (a mirror)."""
    return replace(reference, domain=host, written_domain=host, written_path=reference.path)


def _rebase(found: Resolution, original: Reference, policy: PinPolicy, mirror: str) -> Resolution:
    """A resolution obtained at a mirror, told in terms of the reference the user wrote."""
    from .client import INDEX_MEDIA_TYPES

    assert found.tag is not None and found.digest is not None
    pinned = pin_reference(original, found.tag, found.digest, policy.pin)
    explanation = _explain(
        original,
        pinned,
        found.digest,
        found.media_type in INDEX_MEDIA_TYPES,
        TagChoice(found.tag, found.sharing_tags),
        policy,
        policy.pin is not PinMode.DIGEST,
    )
    return Resolution(
        original=original,
        pinned=pinned,
        digest=found.digest,
        media_type=found.media_type,
        tag=found.tag,
        sharing_tags=found.sharing_tags,
        explanation=f"{explanation} (looked up at the registry mirror {mirror})",
    )


def _combine(failures: list[tuple[str, RegistryError]]) -> RegistryError:
    """One error for a look-up that failed at every endpoint (mirrors, then the registry)."""
    if len(failures) == 1:
        return failures[0][1]
    message = "; then ".join(f"{where}: {error}" for where, error in failures)
    first = failures[0][1]
    kinds = {type(error) for _, error in failures}
    cls = kinds.pop() if len(kinds) == 1 else RegistryError
    return cls(message, registry=first.registry, repository=first.repository)


@dataclass(frozen=True)
class _Task:
    key: str
    reference: Reference
    policy: PinPolicy
    update: bool  # True: a release-line look-up for the outdated-pin rule


class _Resolver:
    def __init__(
        self,
        client: RegistryClient,
        mirrors: Mapping[str, tuple[Mirror, ...]],
        fallback: bool,
    ) -> None:
        self.client = client
        self.mirrors = mirrors
        self.fallback = fallback

    def endpoints(self, reference: Reference) -> list[tuple[str | None, Reference]]:
        """Where to ask, in order: each mirror of the reference's registry, then the registry itself."""
        mirrors = self.mirrors.get(reference.domain, ())
        found: list[tuple[str | None, Reference]] = [(m.host, _via(reference, m.host)) for m in mirrors]
        if not mirrors or self.fallback:
            found.append((None, reference))
        return found

    def resolve(self, task: _Task) -> tuple[Lookup, bool]:
        """The look-up's outcome and whether it came from a cache entry older than the TTL."""
        failures: list[tuple[str, RegistryError]] = []
        for mirror, target in self.endpoints(task.reference):
            try:
                found = resolve(target, self.client, task.policy)
            except RegistryError as error:
                failures.append((f"registry mirror {mirror}" if mirror else target.registry, error))
                continue
            except InvalidReferenceError as error:
                return error, False
            stale = self.client.offline and self._stale(target)
            return (found if mirror is None else _rebase(found, task.reference, task.policy, mirror)), stale
        return _combine(failures), False

    def _stale(self, target: Reference) -> bool:
        """Whether the cached answer for the floating tag is older than the cache's TTL."""
        cache = self.client.cache
        key = f"head\n{target.registry}\n{target.repository}\n{target.tag_or_default}"
        entry = cache.read(key)
        if entry is None:
            return False
        now = getattr(cache, "_clock", time.time)()
        return bool(now - entry.stored_at >= cache.ttl)


def resolve_for_documents(
    documents: Iterable[object],
    *,
    policy: PinPolicy | None = None,
    update: bool = False,
    offline: bool = False,
    cache: DiskCache | None = None,
    registry_mirrors: Mapping[str, str | Sequence[str]] | Sequence[str] | None = None,
    mirror_fallback: bool = True,
    client: RegistryClient | None = None,
    insecure_registries: Iterable[str] | None = None,
    docker_config_dir: Path | str | None = None,
    timeout: float | None = None,
    max_workers: int = 8,
) -> PinLookups:
    """Look up every ``FROM`` image of ``documents`` (Dockerfile texts or parsed documents).

    Each reference that names a tag (or none, meaning ``latest``) is resolved under ``policy``;
    with ``update``, the release line of each tagged reference (see :func:`update_line`) is
    resolved too, at the tag's own level, for the outdated-pin rule. Each distinct
    reference is looked up once, concurrently; a failure is recorded for that reference (the
    others go on) and never raised.

    ``registry_mirrors``: ``{"docker.io": ["https://mirror.example.com"]}`` (or a list of Docker Hub
    mirrors), ``None`` for the Docker daemon's own ``registry-mirrors``. Images of a mirrored
    registry are looked up at each mirror in turn, then, unless ``mirror_fallback`` is false, at
    the registry itself, as the Docker daemon pulls them. Mirrors given as ``http://`` are reached
    over plain HTTP. A ``client`` passed in is used as is (its cache, offline mode, insecure
    registries and credentials) and left open; otherwise one is made from the other arguments.
    """
    policy = policy or PinPolicy()
    if registry_mirrors is None:
        registry_mirrors = daemon_registry_mirrors()
    mirrors = parse_mirrors(registry_mirrors)
    tasks: dict[tuple[str, bool], _Task] = {}
    for document in documents:
        for ref in image_references(document):
            if ref.tag is None and ref.digest is not None:
                continue  # pinned by digest alone: there is no tag to follow
            key = reference_key(ref)
            tasks.setdefault((key, False), _Task(key, ref, policy, False))
            line = update_line(ref) if update else None
            if line is not None:
                level = Specificity(min(max(split_tag(ref.tag or "").specificity, 1), int(Specificity.PATCH)))
                tasks.setdefault((key, True), _Task(key, line, PinPolicy(PinMode.BOTH, level), True))
    lookups = PinLookups()
    if not tasks:
        return lookups

    from concurrent.futures import ThreadPoolExecutor

    from .client import RegistryClient
    from .transport import daemon_insecure_registries

    own_client = client is None
    if client is None:
        plain = [m.host for found in mirrors.values() for m in found if m.plain_http]
        insecure = tuple(daemon_insecure_registries() if insecure_registries is None else insecure_registries)
        client = RegistryClient(
            cache=cache,
            offline=offline,
            insecure_registries=(*insecure, *plain),
            docker_config_dir=docker_config_dir,
            max_workers=max_workers,
            **({"timeout": timeout} if timeout is not None else {}),
        )
    resolver = _Resolver(client, mirrors, mirror_fallback)
    try:
        # A pool of its own: resolve() waits on the client's pool, which these waits must not starve.
        workers = max(1, min(len(tasks), max_workers))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dopt-pin") as pool:
            outcomes = list(pool.map(resolver.resolve, tasks.values()))
    finally:
        if own_client:
            client.close()
    for task, (outcome, stale) in zip(tasks.values(), outcomes, strict=True):
        (lookups.updates if task.update else lookups.resolutions)[task.key] = outcome
        if stale:
            lookups.stale.add(task.key)
    return lookups


def registry_options(
    documents: Iterable[object],
    options: Mapping[str, Any],
    *,
    client: RegistryClient | None = None,
    docker_config_dir: Path | str | None = None,
) -> dict[str, Any]:
    """The command-line hook: the look-up results to merge into ``options``, or ``{}``.

    Reads the settings (``pin``, ``pin-specificity``, ``update-pins``, ``registry-offline``,
    ``registry-mirrors``, ``registry-mirror-fallback``, ``registry-cache-dir``) from ``options``, as
    ``[tool.dopt.rules]`` and the command line give them, and looks nothing up unless ``pin`` is set
    or ``update-pins`` is on. Raises ``ValueError`` (a message naming the setting) for bad values.
    """
    if not pinning_requested(options):
        return {}
    policy = policy_from_options(options)
    mirrors = options.get(MIRRORS)
    if mirrors is not None and not isinstance(mirrors, Mapping | list | tuple):
        raise ValueError(f"'{MIRRORS}' must be a table of registry = [mirror URLs] or a list of URLs")
    from .cache import DiskCache

    cache_dir = options.get(CACHE_DIR)
    lookups = resolve_for_documents(
        documents,
        policy=policy,
        update=bool(options.get(UPDATE_PINS)),
        offline=bool(options.get(OFFLINE)),
        cache=DiskCache(Path(str(cache_dir))) if cache_dir else None,
        registry_mirrors=mirrors,
        mirror_fallback=bool(options.get(MIRROR_FALLBACK, True)),
        client=client,
        docker_config_dir=docker_config_dir,
    )
    return lookups.options()


_LOOKUP_SETTINGS = (PIN, PIN_SPECIFICITY, UPDATE_PINS, OFFLINE, MIRRORS, MIRROR_FALLBACK, CACHE_DIR)


def registry_options_for_files(
    files: Iterable[tuple[Hashable, object, Mapping[str, Any]]],
    *,
    client: RegistryClient | None = None,
    docker_config_dir: Path | str | None = None,
) -> dict[Hashable, dict[str, Any]]:
    """:func:`registry_options` for many files at once: ``(key, text, options)`` → ``{key: options}``.

    Files whose look-up settings agree are looked up together (one client, one pool, each
    reference once), so checking a folder of Dockerfiles costs one round of look-ups. Files that do
    not ask for pinning get no entry.
    """
    groups: dict[str, list[tuple[Hashable, object, Mapping[str, Any]]]] = {}
    for key, text, options in files:
        if not pinning_requested(options):
            continue
        signature = json.dumps([options.get(name) for name in _LOOKUP_SETTINGS], sort_keys=True, default=str)
        groups.setdefault(signature, []).append((key, text, options))
    found: dict[Hashable, dict[str, Any]] = {}
    for members in groups.values():
        options = registry_options(
            [text for _, text, _ in members], members[0][2], client=client, docker_config_dir=docker_config_dir
        )
        for key, _, _ in members:
            found[key] = options
    return found
