"""The disk cache: TTL, offline mode, and immutable digest entries, with a real registry behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dopt.registry import DiskCache, NotInCacheError, RegistryClient, default_cache_dir

from .conftest import Seeded
from .servers import RegistryFront


class Clock:
    """A settable clock, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    cache = DiskCache(tmp_path, ttl=60, clock=clock)
    cache.put("k", {"v": 1})
    assert cache.get("k") == {"v": 1}
    clock.now += 59
    assert cache.get("k") == {"v": 1}
    clock.now += 2
    assert cache.get("k") is None
    assert cache.get("k", immutable=True) == {"v": 1}
    entry = cache.read("k")
    assert entry is not None and entry.stored_at == 1_000_000.0


def test_unreadable_entries_are_misses(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    cache.put("k", [1, 2])
    [path] = [p for p in tmp_path.rglob("*.json")]
    path.write_text("{not json")
    assert cache.read("k") is None
    cache.put("k", [3])
    assert cache.get("k") == [3]
    assert not [p for p in tmp_path.rglob(".tmp-*")]  # atomic writes leave no temporaries
    with pytest.raises(ValueError, match="must not be negative"):
        DiskCache(tmp_path, ttl=-1)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "dopt" / "registry"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dopt" / "registry"


@pytest.mark.docker
def test_client_uses_the_cache_until_the_ttl_passes(
    front: RegistryFront, seeded: Seeded, make_client: Callable[..., RegistryClient], tmp_path: Path
) -> None:
    clock = Clock()
    cache = DiskCache(tmp_path / "ttl-cache", ttl=300, clock=clock)
    ref = f"{front.host}/library/debian:12.5"
    path = "/v2/library/debian/manifests/12.5"

    before = front.count(path)
    assert make_client(cache=cache).head_manifest(ref).digest == seeded.digests["library/debian:12.5"]
    assert make_client(cache=cache).head_manifest(ref).digest == seeded.digests["library/debian:12.5"]
    assert front.count(path) == before + 1  # second client answered from disk

    clock.now += 301
    make_client(cache=cache).head_manifest(ref)
    assert front.count(path) == before + 2  # stale: asked again

    by_digest = f"{front.host}/library/debian@{seeded.digests['library/debian:12.5']}"
    make_client(cache=cache).head_manifest(by_digest)
    clock.now += 10**7
    digest_path = f"/manifests/{seeded.digests['library/debian:12.5']}"
    count = front.count(digest_path)
    make_client(cache=cache).head_manifest(by_digest)
    assert front.count(digest_path) == count  # digests never go stale


@pytest.mark.docker
def test_offline_mode_answers_from_cache_only(
    front: RegistryFront, seeded: Seeded, make_client: Callable[..., RegistryClient], tmp_path: Path
) -> None:
    clock = Clock()
    cache = DiskCache(tmp_path / "offline-cache", ttl=1, clock=clock)
    ref = f"{front.host}/library/python:3.11-slim"
    online = make_client(cache=cache)
    tags = online.list_tags(ref)
    digest = online.head_manifest(ref).digest
    manifest = online.get_manifest(ref)

    clock.now += 10**6  # long expired: offline mode uses it anyway
    requests = len(front.paths)
    offline = make_client(cache=cache, offline=True)
    assert offline.list_tags(ref) == tags
    assert offline.head_manifest(ref).digest == digest
    assert offline.get_manifest(ref) == manifest
    assert len(front.paths) == requests

    with pytest.raises(NotInCacheError) as caught:
        offline.head_manifest(f"{front.host}/library/python:3.12-slim")
    message = str(caught.value)
    assert (
        f"offline mode: the manifest of tag '3.12-slim' of {front.host}/library/python is not in the cache" in message
    )
    assert str(tmp_path / "offline-cache") in message
    assert "run once with network access" in message
    with pytest.raises(NotInCacheError, match="cannot contact registry"):
        offline.ping(front.host)
    assert len(front.paths) == requests
