"""Pinning references against a real registry holding python/debian/alpine-shaped tag sets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dopt.registry import (
    InvalidReferenceError,
    PinMode,
    PinPolicy,
    RegistryClient,
    RepositoryNotFoundError,
    Resolution,
    Specificity,
)
from dopt.registry.resolve import resolve, resolve_many

from .conftest import Seeded
from .servers import RegistryFront

pytestmark = pytest.mark.docker

MakeClient = Callable[..., RegistryClient]


def test_floating_tag_pins_to_most_specific_tag_and_digest(seeded: Seeded, make_client: MakeClient) -> None:
    result = resolve(f"{seeded.host}/library/python:3.11-slim", make_client())
    digest = seeded.digests["library/python:3.11-slim"]
    assert result.text == f"{seeded.host}/library/python:3.11.4-slim@{digest}"
    assert result.changed
    assert (result.tag, result.digest) == ("3.11.4-slim", digest)
    # The -bookworm variant shares the digest but is another variant; it is reported, not chosen.
    assert set(result.sharing_tags) >= {"3.11.4-slim", "3.11-slim"}
    assert "tags sharing that digest:" in result.explanation
    assert "most specific tag (variant 'slim', up to patch level): 3.11.4-slim" in result.explanation
    assert "single-platform manifest" in result.explanation


def test_no_tag_means_latest_and_multi_platform_pins_the_index(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    result = resolve(f"{seeded.host}/library/alpine", client)
    assert result.text == f"{seeded.host}/library/alpine:3.19.1@{seeded.index_digest}"
    assert result.digest == seeded.index_digest
    assert "a multi-platform index" in result.explanation
    explicit = resolve(f"{seeded.host}/library/alpine:latest", client, PinPolicy(specificity=Specificity.MINOR))
    assert explicit.text == f"{seeded.host}/library/alpine:3.19@{seeded.index_digest}"


def test_real_debian_image_and_policies(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    digest = seeded.digests["library/debian:latest"]
    ref = f"{seeded.host}/library/debian"
    assert resolve(ref, client).text == f"{ref}:12.5@{digest}"
    assert resolve(ref, client, PinPolicy(pin=PinMode.TAG)).text == f"{ref}:12.5"
    assert resolve(ref, client, PinPolicy(pin=PinMode.DIGEST)).text == f"{ref}:latest@{digest}"
    assert resolve(ref, client, PinPolicy(specificity=Specificity.MAJOR)).text == f"{ref}:12@{digest}"
    # 'bookworm' has no numbered tags of its own variant: only the digest is added.
    bookworm = resolve(f"{ref}:bookworm", client)
    assert bookworm.text == f"{ref}:bookworm@{digest}"
    assert "no more specific tag (variant 'bookworm', up to patch level) shares it" in bookworm.explanation


def test_already_pinned_references(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    digest = seeded.digests["library/python:3.11.4-slim"]
    exact = f"{seeded.host}/library/python:3.11.4-slim@{digest}"
    result = resolve(exact, client)
    assert result.text == exact
    assert not result.changed
    assert "already pinned; unchanged" in result.explanation

    stale = f"{seeded.host}/library/python:3.11-slim@{seeded.digests['library/python:3.11.3-slim']}"
    assert resolve(stale, client, PinPolicy(pin=PinMode.TAG)).text == exact  # digest refreshed, kept

    digest_only = f"{seeded.host}/library/python@{digest}"
    untouched = resolve(digest_only, client)
    assert (untouched.text, untouched.changed) == (digest_only, False)
    assert "names no tag to follow" in untouched.explanation


def test_candidate_lookups_stop_early(front: RegistryFront, seeded: Seeded, make_client: MakeClient) -> None:
    before = front.count("/v2/library/python/manifests/")
    result = resolve(f"{front.host}/library/python:slim", make_client(max_workers=1))
    assert result.tag == "3.12.1-slim"
    # One HEAD for 'slim', one for the first candidate (3.12.1-slim), which matched.
    assert front.count("/v2/library/python/manifests/") - before == 2


def test_resolve_many_reports_errors_in_place(seeded: Seeded, make_client: MakeClient) -> None:
    results = resolve_many(
        [
            f"{seeded.host}/library/python:3-slim",
            f"{seeded.host}/library/nope:1",
            "Not A Reference",
            f"{seeded.host}/library/debian:12",
        ],
        make_client(),
        PinPolicy(pin=PinMode.TAG),
    )
    assert isinstance(results[0], Resolution) and results[0].text == f"{seeded.host}/library/python:3.12.1-slim"
    assert isinstance(results[1], RepositoryNotFoundError)
    assert isinstance(results[2], InvalidReferenceError)
    assert isinstance(results[3], Resolution) and results[3].text == f"{seeded.host}/library/debian:12.5"


def test_offline_resolution_after_a_warm_run(seeded: Seeded, make_client: MakeClient) -> None:
    ref = f"{seeded.host}/library/python:3.11-slim"
    online = resolve(ref, make_client())
    offline = resolve(ref, make_client(offline=True))
    assert offline.text == online.text
