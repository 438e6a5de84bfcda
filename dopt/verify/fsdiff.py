"""Snapshots of an image's flattened file system and their differences.

A safe fix must leave the runtime file system alone except for caches it was
meant to drop.  We compare paths, types, modes, owners and content hashes of
``docker export`` output; timestamps are ignored because every build sets new
ones.  Files that differ between two builds of the *same* Dockerfile (logs,
bytecode caches, the shadow file's last-change day) are classed as noise so
they never make a fix look guilty.
"""

from __future__ import annotations

import fnmatch
import hashlib
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

#: Caches that package managers leave behind, keyed by the dopt rule that
#: removes them.  A pattern covers the path itself and everything below it.
CACHE_RULES: Mapping[str, tuple[str, ...]] = {
    "apt-cleanup": ("var/lib/apt/lists/*", "var/cache/apt/*"),
    "pip-no-cache-dir": ("root/.cache/pip", "home/*/.cache/pip"),
    "npm-cache-clean": ("root/.npm/_cacache", "home/*/.npm/_cacache", "root/.npm/_logs", "home/*/.npm/_logs"),
    "yarn-cache-clean": ("usr/local/share/.cache/yarn", "root/.cache/yarn", "home/*/.cache/yarn"),
    "go-build-cache": ("root/.cache/go-build", "go/pkg/mod/cache"),
}

#: Paths that change between two identical builds; never evidence of a fix.
NOISE_PATTERNS: tuple[str, ...] = (
    ".dockerenv",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "var/log/*",
    "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "root/.npm/_update-notifier-last-checked",
    "root/.config/configstore/update-notifier-npm.json",
)

#: Noise only when the file exists on both sides: bytecode embeds source mtimes.
CHANGED_NOISE_PATTERNS: tuple[str, ...] = ("*.pyc",)


@dataclass(frozen=True)
class FileEntry:
    """What we know about one path; ``digest`` is content for files, target for links."""

    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    mode: int
    uid: int
    gid: int
    size: int
    digest: str


@dataclass(frozen=True)
class PathChange:
    """One difference between the original image and the fixed one."""

    path: str
    change: str  # "added", "removed", "changed"
    detail: str
    size_before: int
    size_after: int
    reason: str | None = None  # why it is acceptable; None means unexpected


@dataclass
class FsDiff:
    """All differences, split into acceptable and unexpected ones."""

    changes: list[PathChange] = field(default_factory=list)

    @property
    def unexpected(self) -> list[PathChange]:
        return [c for c in self.changes if c.reason is None]

    @property
    def allowed(self) -> list[PathChange]:
        return [c for c in self.changes if c.reason is not None and not c.reason.startswith("noise")]

    @property
    def bytes_removed(self) -> int:
        return sum(c.size_before for c in self.changes if c.change == "removed")

    def summary(self) -> str:
        """One line: counts per kind of difference."""
        if not self.changes:
            return "identical"
        counts: dict[str, int] = {}
        for change in self.changes:
            key = change.reason.split(":", 1)[0] if change.reason else "unexpected"
            counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{count} {key}" for key, count in sorted(counts.items()))


Snapshot = dict[str, FileEntry]


def _normalise(name: str) -> str:
    name = name.lstrip("./") if name.startswith("./") else name.lstrip("/")
    return name.rstrip("/")


def snapshot_tar(stream: IO[bytes]) -> Snapshot:
    """Read a tar stream (``docker export``) into a path → entry map.

    Streams in one pass so multi-gigabyte images never touch the disk.
    """
    snapshot: Snapshot = {}
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            path = _normalise(member.name)
            if not path:
                continue
            if member.isfile():
                digest = hashlib.sha256()
                handle = archive.extractfile(member)
                if handle is not None:
                    for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(chunk)
                kind, value = "file", digest.hexdigest()
            elif member.isdir():
                kind, value = "dir", ""
            elif member.issym():
                kind, value = "symlink", member.linkname
            elif member.islnk():
                kind, value = "hardlink", _normalise(member.linkname)
            else:
                kind, value = "other", f"{member.type!r}:{member.devmajor}:{member.devminor}"
            snapshot[path] = FileEntry(
                kind=kind,
                mode=member.mode & 0o7777,
                uid=member.uid,
                gid=member.gid,
                size=member.size if member.isfile() else 0,
                digest=value,
            )
    return snapshot


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    """``fnmatch`` where a pattern also covers everything below the path it names."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
            return True
    return False


def _describe(before: FileEntry, after: FileEntry) -> str:
    parts = []
    if before.kind != after.kind:
        parts.append(f"type {before.kind} -> {after.kind}")
    elif before.digest != after.digest:
        parts.append("content" if before.kind == "file" else f"target {before.digest} -> {after.digest}")
    if before.mode != after.mode:
        parts.append(f"mode {before.mode:04o} -> {after.mode:04o}")
    if (before.uid, before.gid) != (after.uid, after.gid):
        parts.append(f"owner {before.uid}:{before.gid} -> {after.uid}:{after.gid}")
    return ", ".join(parts)


def classify(
    path: str,
    change: str,
    cache_rules: Mapping[str, Sequence[str]],
    extra_allowed: Sequence[str] = (),
) -> str | None:
    """Why a difference is acceptable, or ``None`` when it is not."""
    if matches_any(path, NOISE_PATTERNS):
        return "noise: differs between identical builds"
    if change == "changed" and matches_any(path, CHANGED_NOISE_PATTERNS):
        return "noise: bytecode timestamp"
    for rule, patterns in cache_rules.items():
        if matches_any(path, patterns):
            return f"cache: {rule}"
    if change == "removed" and matches_any(path, extra_allowed):
        return "expected: dropped by a fix"
    return None


def diff_snapshots(
    before: Snapshot,
    after: Snapshot,
    *,
    cache_rules: Mapping[str, Sequence[str]] = CACHE_RULES,
    extra_allowed: Sequence[str] = (),
) -> FsDiff:
    """Every path that differs, each with the reason it is acceptable (if any).

    A directory that disappeared is acceptable when something acceptable
    disappeared below it and nothing unexpected did (``--no-cache-dir`` also
    means ``~/.cache`` is never created).  Only directories' modification times differ otherwise,
    and those are not compared.
    """
    diff = FsDiff()
    removed_dirs: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is not None and new is not None:
            detail = _describe(old, new)
            if detail:
                reason = classify(path, "changed", cache_rules, extra_allowed)
                diff.changes.append(PathChange(path, "changed", detail, old.size, new.size, reason))
        elif old is not None:
            if old.kind == "dir" and classify(path, "removed", cache_rules, extra_allowed) is None:
                removed_dirs.append(path)
                continue
            reason = classify(path, "removed", cache_rules, extra_allowed)
            diff.changes.append(PathChange(path, "removed", old.kind, old.size, 0, reason))
        elif new is not None:
            reason = classify(path, "added", cache_rules, extra_allowed)
            diff.changes.append(PathChange(path, "added", new.kind, 0, new.size, reason))
    removed = [c for c in diff.changes if c.change == "removed"]
    for directory in removed_dirs:
        prefix = directory + "/"
        below = [c for c in removed if c.path.startswith(prefix)]
        innocent = bool(below) and all(c.reason is not None for c in below)
        reason = "cache: directory that only held removed caches" if innocent else None
        diff.changes.append(PathChange(directory, "removed", "dir", 0, 0, reason))
    diff.changes.sort(key=lambda c: c.path)
    return diff
