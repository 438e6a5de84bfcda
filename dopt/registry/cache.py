"""A small on-disk cache for registry answers.

Pinning a Dockerfile asks the registry the same questions every run (the tag
list of ``python``, the digest of ``3.11-slim``), Docker Hub rate-limits
anonymous clients, and a Dockerfile tool should keep working on a plane.  So
answers are kept as JSON files, each stamped with the time it was stored:

* a normal look-up uses an entry only while it is younger than the TTL;
* offline mode uses any entry, however old, because stale data beats none there;
* entries addressed by digest never go stale (their content cannot change).

One file per entry, written to a temporary name and renamed into place, so
concurrent look-ups (threads or separate processes) never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TTL_SECONDS = 3600.0
"""How long a floating tag's answer is trusted: tags move, but rarely within an hour."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dopt/registry``, falling back to ``~/.cache/dopt/registry``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "dopt" / "registry"


@dataclass(frozen=True)
class CacheEntry:
    """A cached value and the Unix time it was stored."""

    value: object
    stored_at: float


class DiskCache:
    """JSON values on disk, keyed by strings, with a time-to-live.

    ``clock`` is injectable so expiry can be tested without sleeping.
    """

    def __init__(
        self,
        directory: Path | None = None,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl < 0:
            raise ValueError(f"cache TTL must not be negative, got {ttl}")
        self.directory = directory if directory is not None else default_cache_dir()
        self.ttl = ttl
        self._clock = clock

    def _path(self, key: str) -> Path:
        # Keys contain '/', ':' and '@'; hashing gives safe, fixed-length file names.
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.directory / digest[:2] / f"{digest}.json"

    def read(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` whatever its age, or ``None`` if absent or unreadable."""
        try:
            with self._path(key).open(encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key or "value" not in data:
            return None
        stored_at = data.get("stored_at")
        if not isinstance(stored_at, int | float):
            return None
        return CacheEntry(value=data["value"], stored_at=float(stored_at))

    def get(self, key: str, *, immutable: bool = False) -> object | None:
        """The value for ``key`` if it is fresh (or ``immutable``), else ``None``."""
        entry = self.read(key)
        if entry is None:
            return None
        if immutable or self._clock() - entry.stored_at < self.ttl:
            return entry.value
        return None

    def put(self, key: str, value: object) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``, replacing any older entry atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = json.dumps({"key": key, "stored_at": self._clock(), "value": value})
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(payload)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
