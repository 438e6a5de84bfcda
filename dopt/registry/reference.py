"""Docker image references and image tags.

A ``FROM`` line can only be pinned safely if its image reference is read exactly
the way Docker reads it: ``python`` and ``docker.io/library/python`` are the same
image, ``localhost/app`` and ``app`` are not, and ``my-registry:5000/app`` names a
registry host while ``app:5000`` names a tag.  The grammar below follows
docker/distribution's reference package (``reference := name [":" tag] ["@" digest]``)
and its "normalised name" rules, so a reference this module accepts or rejects is
one ``docker pull`` accepts or rejects.

References remember how the user wrote them, so that rewriting a Dockerfile keeps
``python:3.11-slim`` short instead of expanding it to ``docker.io/library/python``.

The second half of the module reads version-shaped tags (``3.11.4-slim-bookworm``)
as a numeric version plus a variant, which is what tag pinning compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import IntEnum

DEFAULT_DOMAIN = "docker.io"
"""The domain Docker assumes when a reference names none."""

LEGACY_DEFAULT_DOMAIN = "index.docker.io"
"""Docker Hub's old name; Docker treats it as :data:`DEFAULT_DOMAIN`."""

DOCKER_HUB_API_HOST = "registry-1.docker.io"
"""The host that actually serves Docker Hub's registry API (``docker.io`` does not)."""

OFFICIAL_REPO_PREFIX = "library/"
"""Namespace of Docker Hub's official images: ``python`` is ``library/python``."""

DEFAULT_TAG = "latest"
"""The tag Docker pulls when a reference has neither tag nor digest."""

NAME_TOTAL_LENGTH_MAX = 255
"""docker/distribution's limit on the length of ``[domain/]path``."""

# The grammar, written with the same building blocks as docker/distribution.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + r")*"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6_ADDRESS + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
_ANCHORED_NAME_RE = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# Digest algorithms Docker can verify, with the length of their lowercase hex encoding.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReferenceError(ValueError):
    """An image reference that Docker itself would refuse.

    The message quotes the reference and says which part is wrong, because the
    text usually comes straight from a Dockerfile the user has to fix.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid image reference {text!r}: {reason}")
        self.text = text
        self.reason = reason


def validate_digest(text: str) -> str:
    """Return ``text`` if it is a digest Docker can verify, else raise ``ValueError``.

    The reference grammar allows any ``algorithm:hex`` shape, but Docker then only
    accepts registered algorithms with lowercase hex of the exact length, so a
    digest that passes the grammar can still be unusable.
    """
    if not _DIGEST_RE.fullmatch(text):
        raise ValueError(f"digest {text!r} is not of the form 'sha256:<64 lowercase hex digits>'")
    algorithm, _, encoded = text.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise ValueError(f"digest algorithm {algorithm!r} is not supported (use sha256)")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise ValueError(f"digest {text!r} must have exactly {length} lowercase hex digits after '{algorithm}:'")
    return text


def validate_tag(text: str) -> str:
    """Return ``text`` if it is a valid tag, else raise ``ValueError`` saying why."""
    if not _TAG_RE.fullmatch(text):
        raise ValueError(
            f"tag {text!r} is not valid: a tag is 1 to 128 characters of letters, digits, "
            "'_', '.' and '-', and must not start with '.' or '-'"
        )
    return text


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference that still knows how it was written.

    ``domain`` and ``path`` are normalised (``docker.io``, ``library/python``) and
    are what equality compares; ``written_domain`` and ``written_path`` keep the
    user's spelling so :meth:`__str__` can give the reference back in the same form.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None
    written_domain: str | None = field(default=None, compare=False)
    written_path: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The fully qualified repository name, e.g. ``docker.io/library/python``."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """The repository path used in registry API URLs, e.g. ``library/python``."""
        return self.path

    @property
    def is_docker_hub(self) -> bool:
        """Whether the image lives on Docker Hub, which has its own host and auth quirks."""
        return self.domain == DEFAULT_DOMAIN

    @property
    def registry(self) -> str:
        """The ``host[:port]`` that serves this image's registry API."""
        return DOCKER_HUB_API_HOST if self.is_docker_hub else self.domain

    @property
    def tag_or_default(self) -> str:
        """The tag Docker would pull when no digest is given: the written tag or ``latest``."""
        return self.tag if self.tag is not None else DEFAULT_TAG

    def with_tag(self, tag: str | None) -> Reference:
        """Return a copy with ``tag`` (validated), keeping the written form of the name."""
        if tag is not None:
            try:
                validate_tag(tag)
            except ValueError as exc:
                raise InvalidReferenceError(str(self), str(exc)) from None
        return replace(self, tag=tag)

    def with_digest(self, digest: str | None) -> Reference:
        """Return a copy with ``digest`` (validated), keeping the written form of the name."""
        if digest is not None:
            try:
                validate_digest(digest)
            except ValueError as exc:
                raise InvalidReferenceError(str(self), str(exc)) from None
        return replace(self, digest=digest)

    def _format(self, domain: str | None, path: str) -> str:
        text = f"{domain}/{path}" if domain else path
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        """The reference in the form the user wrote it (short stays short)."""
        return self._format(self.written_domain, self.written_path or self.path)

    def canonical(self) -> str:
        """The fully qualified form, e.g. ``docker.io/library/python:3.11-slim``."""
        return self._format(self.domain, self.path)

    def familiar(self) -> str:
        """The shortest form Docker reads back as the same image, e.g. ``python:3.11-slim``.

        ``docker.io/`` stays when the path's first component would otherwise be
        taken for a registry host (``docker.io/my.org/app``).
        """
        if not self.is_docker_hub:
            return self._format(self.domain, self.path)
        path = self.path
        remainder = path.removeprefix(OFFICIAL_REPO_PREFIX)
        if remainder != path and "/" not in remainder:
            path = remainder
        if "/" in path and _split_docker_domain(path)[0] != DEFAULT_DOMAIN:
            return self._format(self.domain, self.path)
        return self._format(None, path)


def _split_docker_domain(text: str) -> tuple[str, str, str | None, bool]:
    """Split ``text`` into (domain, remainder, domain as written, whether ``library/`` was added).

    Mirrors Docker's rule for telling a registry host from a first path component:
    it is a host if it is ``localhost``, contains ``.`` or ``:``, or has uppercase
    letters (which paths never may).  Single-component Docker Hub names gain the
    ``library/`` namespace of official images.
    """
    first, slash, rest = text.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + text, None, True
    if first == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    elif first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain = first
    else:
        return DEFAULT_DOMAIN, text, None, False
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        return domain, OFFICIAL_REPO_PREFIX + rest, first, True
    return domain, rest, first, False


def _diagnose(text: str) -> str:
    """Explain why ``text`` failed the grammar, part by part, for a useful message."""
    if not text:
        return "it is empty; a repository name must have at least one component"
    if any(c.isspace() for c in text):
        return "it contains whitespace"
    name, at, digest = text.partition("@")
    if at:
        try:
            validate_digest(digest)
        except ValueError as exc:
            return str(exc)
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        try:
            validate_tag(tag)
        except ValueError as exc:
            return str(exc)
    if _REFERENCE_RE.fullmatch(text.lower()):
        return "repository name must be lowercase"
    return (
        f"repository name {name!r} is not valid: path components are lowercase letters and digits, "
        "separated by '/', and may contain single '.', one or two '_' or any number of '-' between them"
    )


def parse_reference(text: str) -> Reference:
    """Parse an image reference the way ``docker pull`` does.

    Raises :class:`InvalidReferenceError` for anything Docker would reject, and for
    ``scratch``, which is Docker's reserved empty base rather than an image.
    """
    if text == "scratch":
        raise InvalidReferenceError(text, "'scratch' is Docker's reserved empty base image, not a registry image")
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReferenceError(text, "a 64-character hexadecimal string is an image ID, not a repository name")
    domain, remainder, written_domain, added_library = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        written_remote = remote.removeprefix(OFFICIAL_REPO_PREFIX) if added_library else remote
        raise InvalidReferenceError(text, f"repository name {written_remote!r} must be lowercase")

    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise InvalidReferenceError(text, _diagnose(text))
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(text, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        try:
            validate_digest(digest)
        except ValueError as exc:
            raise InvalidReferenceError(text, str(exc)) from None
    name_match = _ANCHORED_NAME_RE.fullmatch(name)
    assert name_match is not None  # the full grammar just matched the same text
    if name_match.group(1) != domain:
        raise InvalidReferenceError(
            text,
            f"{written_domain!r} is taken as a registry host (it contains '.' or ':', or is 'localhost' "
            "or has uppercase letters) but is not a valid host name",
        )
    path = name_match.group(2)
    return Reference(
        domain=name_match.group(1),
        path=path,
        tag=tag,
        digest=digest,
        written_domain=written_domain,
        written_path=path.removeprefix(OFFICIAL_REPO_PREFIX) if added_library else path,
    )


# ---------------------------------------------------------------------------
# Tags


class Specificity(IntEnum):
    """How many version components a pinned tag should carry."""

    MAJOR = 1
    MINOR = 2
    PATCH = 3

    @classmethod
    def parse(cls, text: str) -> Specificity:
        """Read ``major``/``minor``/``patch`` (any case), with a clear error otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"specificity must be one of major, minor, patch; got {text!r}") from None


_VERSIONED_TAG_RE = re.compile(r"(?P<prefix>v?)(?P<version>[0-9]+(?:\.[0-9]+)*)(?:-(?P<variant>.+))?", re.ASCII)


@dataclass(frozen=True)
class TagVersion:
    """A tag read as ``[v]<numeric version>[-<variant>]``.

    ``3.11.4-slim-bookworm`` is version ``(3, 11, 4)``, variant ``slim-bookworm``.
    Tags that do not start with a plain dotted number (``slim``, ``bookworm``,
    ``3.13.0rc1-slim``) have an empty version and the whole tag as variant, so they
    are never mistaken for a release line; ``latest`` is the variant-less alias of
    the plain numbered tags, as image publishers use it.
    """

    tag: str
    version: tuple[int, ...]
    variant: str
    prefix: str = ""

    @property
    def specificity(self) -> int:
        """Number of version components: 1 for ``3``, 3 for ``3.11.4``, 0 for ``slim``."""
        return len(self.version)

    def same_line(self, other: TagVersion) -> bool:
        """Whether ``other`` is a tag of the same variant whose version extends this one.

        ``3.11.4-slim`` is on the line of ``3.11-slim`` and of ``slim``; ``3.12.1-slim``
        is not on the line of ``3.11-slim``, and ``3.11.4-slim-bookworm`` is another variant.
        """
        return (
            self.variant == other.variant
            and self.prefix == other.prefix
            and other.version[: len(self.version)] == self.version
        )


def split_tag(tag: str) -> TagVersion:
    """Split a tag into numeric version and variant (see :class:`TagVersion`)."""
    if tag == DEFAULT_TAG:
        return TagVersion(tag=tag, version=(), variant="")
    match = _VERSIONED_TAG_RE.fullmatch(tag)
    if match is None:
        return TagVersion(tag=tag, version=(), variant=tag)
    version = tuple(int(part) for part in match.group("version").split("."))
    return TagVersion(tag=tag, version=version, variant=match.group("variant") or "", prefix=match.group("prefix"))


def compare_specificity(a: str, b: str) -> int:
    """Negative, zero or positive as tag ``a`` names fewer, as many or more version parts than ``b``."""
    return split_tag(a).specificity - split_tag(b).specificity
