"""Pinning floating image tags to what they point to today.

``FROM python:3.11-slim`` builds whatever ``3.11-slim`` means on the day of the
build, so two builds of the same Dockerfile can differ.  Pinning records the
answer: the digest the tag points to now, and the most specific tag of the same
variant that points to the same digest (``3.11.4-slim``), so the Dockerfile stays
readable and a reviewer can see which release it is on.

The decision (which tag wins) is pure logic over a tag → digest mapping, in
:func:`candidate_tags` and :func:`choose_tag`, testable without a registry.
:func:`resolve` adds the I/O: one HEAD for the floating tag, the tag list, and
HEADs for candidate tags in order of preference, stopping at the first batch that
contains a match, so a repository with thousands of tags costs a few requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from .errors import RegistryError

if TYPE_CHECKING:
    from .client import RegistryClient
from .reference import InvalidReferenceError, Reference, Specificity, parse_reference, split_tag


class PinMode(StrEnum):
    """What to write into the reference.

    ``tag``: the most specific tag (``python:3.11.4-slim``), readable but mutable;
    ``digest``: the floating tag plus digest (``python:3.11-slim@sha256:...``), exact
    while the tag still tells tools which line to follow; ``both``: specific tag plus
    digest, exact and readable.
    """

    TAG = "tag"
    DIGEST = "digest"
    BOTH = "both"


@dataclass(frozen=True)
class PinPolicy:
    """How to pin: :class:`PinMode` and how many version parts the chosen tag may have."""

    pin: PinMode = PinMode.BOTH
    specificity: Specificity = Specificity.PATCH


@dataclass(frozen=True)
class TagChoice:
    """The tag chosen for a digest, and every known tag sharing that digest."""

    tag: str
    sharing: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """The outcome of pinning one reference, with a human-readable explanation."""

    original: Reference
    pinned: Reference
    digest: str | None
    media_type: str | None
    tag: str | None
    sharing_tags: tuple[str, ...]
    explanation: str

    @property
    def text(self) -> str:
        """The new reference, written in the user's form (short names stay short)."""
        return str(self.pinned)

    @property
    def changed(self) -> bool:
        """Whether the reference text differs from the original."""
        return self.text != str(self.original)


def candidate_tags(floating_tag: str, tags: Iterable[str], specificity: Specificity) -> list[str]:
    """Tags that could stand in for ``floating_tag``, most preferred first.

    A candidate has the same variant (``slim`` for ``3.11-slim``; none for
    ``latest``), a version that extends the floating tag's (``3.11.4`` extends
    ``3.11``), more version parts than the floating tag and no more than
    ``specificity`` allows.  Preference: more version parts, then higher version.
    """
    floating = split_tag(floating_tag)
    candidates = [
        parsed
        for parsed in map(split_tag, dict.fromkeys(tags))
        if floating.same_line(parsed) and floating.specificity < parsed.specificity <= specificity
    ]
    candidates.sort(key=lambda parsed: (parsed.specificity, parsed.version), reverse=True)
    return [parsed.tag for parsed in candidates]


def choose_tag(floating_tag: str, digest: str, tag_digests: Mapping[str, str], specificity: Specificity) -> TagChoice:
    """Pick the most preferred candidate of ``floating_tag`` that has ``digest``.

    ``tag_digests`` may be partial (only the tags looked up so far); the floating
    tag itself is kept when no candidate shares the digest.
    """
    sharing = sorted(
        {tag for tag, tag_digest in tag_digests.items() if tag_digest == digest} | {floating_tag},
        key=lambda tag: (-split_tag(tag).specificity, tag),
    )
    for candidate in candidate_tags(floating_tag, tag_digests, specificity):
        if tag_digests[candidate] == digest:
            return TagChoice(tag=candidate, sharing=tuple(sharing))
    return TagChoice(tag=floating_tag, sharing=tuple(sharing))


def pin_reference(original: Reference, tag: str, digest: str, mode: PinMode) -> Reference:
    """The reference to write for ``original`` given the chosen ``tag`` and ``digest``.

    A reference that was already pinned by digest keeps a (refreshed) digest even in
    ``tag`` mode: silently dropping a pin the user chose would make builds less exact.
    """
    if mode is PinMode.DIGEST:
        return original.with_tag(original.tag_or_default).with_digest(digest)
    if mode is PinMode.TAG and original.digest is None:
        return original.with_tag(tag).with_digest(None)
    return original.with_tag(tag).with_digest(digest)


def _explain(
    original: Reference,
    pinned: Reference,
    digest: str,
    is_index: bool,
    choice: TagChoice,
    policy: PinPolicy,
    looked_at_tags: bool,
) -> str:
    floating_tag = original.tag_or_default
    kind = "a multi-platform index" if is_index else "a single-platform manifest"
    floating = original.with_tag(floating_tag).with_digest(None)
    parts = [f"{floating} points to {digest} ({kind})"]
    if looked_at_tags:
        others = [tag for tag in choice.sharing if tag != floating_tag]
        if others:
            parts.append(f"tags sharing that digest: {', '.join(choice.sharing)}")
        variant = split_tag(floating_tag).variant
        line = f"variant {variant!r}" if variant else "no variant"
        if choice.tag != floating_tag:
            parts.append(f"most specific tag ({line}, up to {policy.specificity.name.lower()} level): {choice.tag}")
        else:
            parts.append(f"no more specific tag ({line}, up to {policy.specificity.name.lower()} level) shares it")
    if pinned == original:
        parts.append("already pinned; unchanged")
    else:
        parts.append(f"pinned as {pinned}")
    return "; ".join(parts)


def resolve(reference: Reference | str, client: RegistryClient, policy: PinPolicy | None = None) -> Resolution:
    """Pin ``reference`` (``python:3.11-slim``, ``alpine``, ``alpine:latest``) according to ``policy``.

    Raises :class:`~dopt.registry.errors.RegistryError` if the registry cannot answer
    and :class:`~dopt.registry.reference.InvalidReferenceError` for a bad reference.
    """
    policy = policy or PinPolicy()
    ref = reference if isinstance(reference, Reference) else parse_reference(reference)
    if ref.digest is not None and ref.tag is None:
        return Resolution(
            original=ref,
            pinned=ref,
            digest=ref.digest,
            media_type=None,
            tag=None,
            sharing_tags=(),
            explanation=f"{ref} is already pinned to a digest and names no tag to follow; left as is",
        )
    floating_tag = ref.tag_or_default
    head = client.head_manifest(ref.with_digest(None).with_tag(floating_tag))
    tag_digests = {floating_tag: head.digest}
    looked_at_tags = policy.pin is not PinMode.DIGEST
    if looked_at_tags:
        candidates = candidate_tags(floating_tag, client.list_tags(ref), policy.specificity)
        batch_size = max(1, client.max_workers)
        for start in range(0, len(candidates), batch_size):
            batch = candidates[start : start + batch_size]
            found = client.digests(ref, batch)
            tag_digests.update((tag, descriptor.digest) for tag, descriptor in found.items())
            if any(tag_digests.get(tag) == head.digest for tag in batch):
                break  # earlier batches had no match, so the first match here is the best one
    choice = choose_tag(floating_tag, head.digest, tag_digests, policy.specificity)
    pinned = pin_reference(ref, choice.tag, head.digest, policy.pin)
    return Resolution(
        original=ref,
        pinned=pinned,
        digest=head.digest,
        media_type=head.media_type,
        tag=choice.tag,
        sharing_tags=choice.sharing,
        explanation=_explain(ref, pinned, head.digest, head.is_index, choice, policy, looked_at_tags),
    )


def resolve_many(
    references: Iterable[Reference | str], client: RegistryClient, policy: PinPolicy | None = None
) -> list[Resolution | RegistryError | InvalidReferenceError]:
    """Resolve several references concurrently; each result is a Resolution or the error for it.

    A Dockerfile has several ``FROM`` lines and one bad line should not stop the
    others from being pinned, so errors are returned in place instead of raised.
    """
    items = list(references)

    def one(item: Reference | str) -> Resolution | RegistryError | InvalidReferenceError:
        try:
            return resolve(item, client, policy)
        except (RegistryError, InvalidReferenceError) as exc:
            return exc

    # A pool of its own: resolve() waits on the client's pool, which must not be starved by these waits.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(len(items), 4)), thread_name_prefix="dopt-resolve") as pool:
        return list(pool.map(one, items))
