"""DO251 add-instead-of-copy: ``ADD`` used for a plain copy of local files.

## What it does
Reports ``ADD`` whose sources are all local files or folders of the build context and rewrites
it to ``COPY``. It leaves ``ADD`` alone when it does something ``COPY`` cannot:

* a source is a URL (``https://...``) or a Git repository (``git@...``, ``...git``);
* a source may be a tar archive, which ``ADD`` unpacks: a name ending in ``.tar``, ``.tgz``,
  ``.gz``, ``.bz2``, ``.xz``, ``.zst``, ``.lz``/``.lzma`` and similar (``.zip``, ``.7z`` and
  ``.rar`` too, although ``ADD`` does not unpack those), or a file in the build context that
  starts like a tar, gzip, bzip2, xz or zstd file whatever its name;
* a wildcard source may match such a file and the build context cannot be read to check;
* it has flags only ``ADD`` knows (``--checksum``, ``--keep-git-dir``, ``--unpack``), a
  here-document, or a source whose variables have no known value.

Same meaning as hadolint's DL3020.

## Why
``ADD`` can download and unpack; a reader has to check every source to know whether it does. A
plain ``COPY`` says what happens and never unpacks a file by surprise.

## Example
```dockerfile
ADD requirements.txt /app/
```
becomes
```dockerfile
COPY requirements.txt /app/
```

## Fix safety
Safe: for local files and folders that are not archives, ``ADD`` and ``COPY`` copy the same
bytes with the same ownership, permissions and timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, Rule
from dopt.optimizer.semantic import expand
from dopt.optimizer.syntax import Instruction

_COPY_FLAGS = frozenset({"chown", "chmod", "link", "exclude"})
_ARCHIVE = re.compile(
    r"\.(tar|tgz|taz|tbz|tbz2|tb2|txz|tlz|tzst|gz|bz2|xz|lz|lzma|lz4|zst|z|zip|7z|rar)\Z",
    re.IGNORECASE,
)
_REMOTE = re.compile(r"\A(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|[\w.-]+@[\w.-]+:)|\.git(?:#.*)?\Z")
_GLOB = re.compile(r"[*?\[]")
# Magic numbers of the formats ADD unpacks (tar, and tar compressed with gzip, bzip2, xz or zstd).
_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x5d\x00\x00")


def _is_archive_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    return head.startswith(_MAGIC) or head[257:262] == b"ustar"


def _context_matches(context: Path, pattern: str) -> list[Path] | None:
    """Files of the build context a source names (None when the context cannot be read)."""
    if not context.is_dir():
        return None
    relative = pattern.lstrip("/").rstrip("/") or "."
    if not _GLOB.search(relative):
        candidate = context / relative
        return [candidate] if candidate.exists() else []
    try:
        return list(context.glob(relative))
    except (OSError, ValueError):
        return None


def _why_not(ctx: Context, ins: Instruction, node: Instruction) -> str | None:
    """Why this ADD must stay ADD (None: COPY does the same); "" when it is not reported at all."""
    if node.heredocs or ins.heredocs:
        return ""
    if any(flag.name not in _COPY_FLAGS for flag in node.flags):
        return ""
    if len(node.values) < 2:
        return ""
    variables = ctx.model.scope_of(ins).variables() if ins.sub is None else {}
    sources = []
    for raw in node.values[:-1]:
        value = expand(raw, variables, ctx.document.escape) if "$" in raw else raw
        if value is None:
            return ""
        if _REMOTE.search(value):
            return ""
        sources.append(value)
    if any(_ARCHIVE.search(source.rstrip("/")) for source in sources):
        return ""  # unpacking is what the ADD is for
    context = ctx.context_dir if ins.sub is None else None
    for source in sources:
        matches = _context_matches(context, source) if context is not None else None
        if matches is None:
            if _GLOB.search(source) and not re.search(r"\.\w+\Z", source):
                return f"`{source}` may match an archive, which ADD unpacks, and the build context cannot be read"
            continue
        for path in matches:
            if path.is_file() and (_ARCHIVE.search(path.name) or _is_archive_file(path)):
                return ""
    return None


class AddInsteadOfCopy(Rule):
    code = "DO251"
    name = "add-instead-of-copy"
    summary = "ADD of local files; COPY does the same and never downloads or unpacks"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3020"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            node = ins.sub if ins.sub is not None else ins
            if node.name != "ADD":
                continue
            reason = _why_not(ctx, ins, node)
            if reason == "":
                continue
            message = "ADD copies local files here; COPY does the same and never downloads or unpacks"
            if reason is not None:
                yield self.at_instruction(ctx, ins, f"{message} (not rewritten: {reason})")
                continue
            keyword = "copy" if node.keyword.islower() else "COPY"
            edit = Edit(node.keyword_start, node.keyword_start + len(node.keyword), keyword)
            yield self.at_instruction(ctx, ins, message, self.make_fix("replace ADD with COPY", edit))
