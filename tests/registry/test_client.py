"""The distribution API client against a real docker-registry seeded with pushed images."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from dopt.registry import (
    AccessDeniedError,
    ManifestNotFoundError,
    RateLimitError,
    RegistryClient,
    RegistryResponseError,
    RegistryUnreachableError,
    RepositoryNotFoundError,
)
from dopt.registry.client import (
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_INDEX,
)

from .conftest import MANY_TAGS, Seeded
from .servers import Fault, RegistryFront, free_port, sha256_digest

pytestmark = pytest.mark.docker

MakeClient = Callable[..., RegistryClient]


def test_ping_open_registry(seeded: Seeded, make_client: MakeClient) -> None:
    assert make_client().ping(seeded.host) is None


def test_list_tags(seeded: Seeded, make_client: MakeClient) -> None:
    tags = make_client().list_tags(f"{seeded.host}/library/python")
    assert sorted(tags) == sorted(tag.split(":")[1] for tag in seeded.digests if tag.startswith("library/python:"))


def test_head_manifest_matches_the_digest_docker_push_reported(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    for repo_tag, pushed_digest in seeded.digests.items():
        descriptor = client.head_manifest(f"{seeded.host}/{repo_tag}")
        assert descriptor.digest == pushed_digest, repo_tag
        assert descriptor.media_type == MEDIA_TYPE_DOCKER_MANIFEST
        assert not descriptor.is_index
        assert descriptor.size and descriptor.size > 0


def test_multi_platform_images_report_the_index_digest(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    index = client.head_manifest(f"{seeded.host}/library/alpine")  # no tag: latest
    assert index.digest == seeded.index_digest
    assert index.media_type == MEDIA_TYPE_OCI_INDEX
    assert index.is_index
    listed = client.head_manifest(f"{seeded.host}/library/alpine:3.18.6")
    assert (listed.digest, listed.media_type) == (seeded.list_digest, MEDIA_TYPE_DOCKER_MANIFEST_LIST)

    manifest = client.get_manifest(f"{seeded.host}/library/alpine:3.19")
    assert manifest.descriptor.digest == seeded.index_digest == sha256_digest(manifest.content)
    manifests = manifest.json()["manifests"]
    assert isinstance(manifests, list)
    assert [m["platform"]["architecture"] for m in manifests] == ["amd64", "arm64"]
    by_digest = client.get_manifest(f"{seeded.host}/library/alpine@{seeded.index_digest}")
    assert by_digest.content == manifest.content


def test_digest_is_computed_when_the_registry_omits_the_header(
    front: RegistryFront, seeded: Seeded, make_client: MakeClient
) -> None:
    front.hide_digest_header = True
    try:
        client = make_client()
        head = client.head_manifest(f"{front.host}/library/alpine:3.19.1")
        manifest = client.get_manifest(f"{front.host}/library/python:3.11-slim")
    finally:
        front.hide_digest_header = False
    assert head.digest == seeded.index_digest
    assert head.is_index
    assert manifest.descriptor.digest == seeded.digests["library/python:3.11-slim"]


def test_digests_concurrently_skip_missing_tags(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client(max_workers=4)
    found = client.digests(f"{seeded.host}/library/python", ["3.11.4-slim", "3.12-slim", "no-such-tag", "slim"])
    assert {tag: d.digest for tag, d in found.items()} == {
        tag: seeded.digests[f"library/python:{tag}"] for tag in ("3.11.4-slim", "3.12-slim", "slim")
    }


def test_tag_list_pagination_follows_link_headers(front: RegistryFront, make_client: MakeClient) -> None:
    before = front.count("/v2/many/tags/tags/list")
    tags = make_client(page_size=7).list_tags(f"{front.host}/many/tags")
    assert tags == sorted(MANY_TAGS)
    pages = front.count("/v2/many/tags/tags/list") - before
    assert pages == -(-len(MANY_TAGS) // 7)  # ceil: 22 pages of at most 7
    # A registry that ignores n (as docker-registry 2.8 does) answers in one page.
    assert sorted(make_client(page_size=7, cache=None).list_tags(f"{front.backend}/many/tags")) == MANY_TAGS


def test_pagination_loop_is_an_error(front: RegistryFront, make_client: MakeClient) -> None:
    looping = Fault(
        "/v2/many/tags/tags/list",
        200,
        {"Content-Type": "application/json", "Link": '</v2/many/tags/tags/list?n=7>; rel="next"'},
        json.dumps({"name": "many/tags", "tags": ["t000"]}).encode(),
    )
    with front.fault(looping), pytest.raises(RegistryResponseError, match="pagination loops back"):
        make_client(page_size=7).list_tags(f"{front.host}/many/tags")


def test_unknown_repository_and_tag(seeded: Seeded, make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(RepositoryNotFoundError) as repo_error:
        client.head_manifest(f"{seeded.host}/library/nope:1")
    assert f"repository library/nope not found on {seeded.host}" in str(repo_error.value)
    assert "NAME_UNKNOWN" in str(repo_error.value)
    with pytest.raises(RepositoryNotFoundError):
        client.list_tags(f"{seeded.host}/library/nope")
    with pytest.raises(ManifestNotFoundError) as tag_error:
        client.head_manifest(f"{seeded.host}/library/python:9.9")
    assert f"tag '9.9' not found in {seeded.host}/library/python" in str(tag_error.value)
    with pytest.raises(ManifestNotFoundError) as close_error:
        client.get_manifest(f"{seeded.host}/library/python:3.11.5-slim")
    assert "similar tags that exist: 3.11.4-slim, 3.11.3-slim" in str(close_error.value)
    with pytest.raises(ManifestNotFoundError, match=f"digest sha256:0+ not found in {seeded.host}/library/python$"):
        client.head_manifest(f"{seeded.host}/library/python@sha256:{'0' * 64}")


def test_unreachable_registry(make_client: MakeClient) -> None:
    port = free_port()  # nothing listens there
    client = make_client()
    started = time.monotonic()
    with pytest.raises(RegistryUnreachableError) as caught:
        client.list_tags(f"127.0.0.1:{port}/library/python")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"cannot reach registry 127.0.0.1:{port} (looking up library/python)" in message
    assert "refused; is a registry running and listening there?" in message
    with pytest.raises(RegistryUnreachableError, match=r"cannot resolve host 'no-such-registry\.invalid'"):
        client.ping("no-such-registry.invalid")


def test_rate_limit_and_server_errors(front: RegistryFront, make_client: MakeClient) -> None:
    client = make_client()
    too_many = Fault(
        "/manifests/",
        429,
        {"Retry-After": "7", "Content-Type": "application/json"},
        b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
    )
    with front.fault(too_many), pytest.raises(RateLimitError) as caught:
        client.get_manifest(f"{front.host}/library/python:3.11-slim")
    assert caught.value.retry_after == 7
    message = str(caught.value)
    assert f"{front.host}/library/python: rate limit reached (HTTP 429)" in message
    assert "TOOMANYREQUESTS: slow down" in message
    assert "wait 7s" in message
    assert f"docker login {front.host}" in message

    with front.fault(Fault("/tags/list", 503)), pytest.raises(RegistryResponseError) as failed:
        client.list_tags(f"{front.host}/library/python")
    assert failed.value.status == 503
    assert "HTTP 503" in str(failed.value)
    assert "try again later" in str(failed.value)

    with front.fault(Fault("/v2/", 404)), pytest.raises(RegistryResponseError, match="does not look like"):
        client.ping(front.host)

    denied = Fault("/tags/list", 403, {}, b'{"errors":[{"code":"DENIED","message":"requested access is denied"}]}')
    with front.fault(denied), pytest.raises(AccessDeniedError) as refused:
        client.list_tags(f"{front.host}/library/debian")
    message = str(refused.value)
    assert f"{front.host}/library/debian: access denied (HTTP 403)" in message
    assert "DENIED: requested access is denied" in message


def test_manifest_digest_mismatch_is_refused(front: RegistryFront, seeded: Seeded, make_client: MakeClient) -> None:
    other = seeded.digests["library/python:3.11.3-slim"]
    tampered = Fault(
        "/manifests/3.11-slim",
        200,
        {"Content-Type": MEDIA_TYPE_DOCKER_MANIFEST, "Docker-Content-Digest": other},
        b'{"schemaVersion": 2}',
    )
    with front.fault(tampered), pytest.raises(RegistryResponseError, match="altered"):
        make_client().get_manifest(f"{front.host}/library/python:3.11-slim")
