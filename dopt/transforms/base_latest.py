"""DO400 base-image-latest: ``FROM image`` with no tag, or with ``:latest``, builds whatever was pushed last.

## What it does
Reports a ``FROM`` whose image has no tag (Docker then pulls ``:latest``) or the tag ``latest``,
and no digest. When the registry was asked before the run (``dopt fix --pin both``, or ``pin`` in
``[tool.dopt.rules]``), the fix rewrites the reference to what ``latest`` points to now, as the
pinning policy says:

* ``pin = "tag"``: the most specific release tag sharing the digest (``python:3.12.1``);
* ``pin = "digest"``: the digest (``python:latest@sha256:...``);
* ``pin = "both"`` (default): both (``python:3.12.1@sha256:...``);

and ``pin-specificity`` (``major``, ``minor``, ``patch``; default ``patch``) limits how many version
parts the chosen tag has. The message tells which tags share the digest and why one was chosen.
``FROM ${BASE}`` with ``ARG BASE=python:latest`` is fixed in the ARG default when only FROM lines
use the ARG. Stages built on earlier stages and ``scratch`` are not images and are skipped.

Without an answer from the registry (look-ups off, offline without a cached answer, registry
down, unknown image) the finding stays, with the reason, and nothing is guessed.

Same ground as hadolint's DL3006 (untagged) and DL3007 (``latest``).

## Why
``latest`` moves with every release: the same Dockerfile built next month gets another Python or
another Alpine, and a rebuild meant to change one line can change everything, or break.

## Example
```dockerfile
FROM python:latest
FROM alpine
```
becomes (``pin = "both"``)
```dockerfile
FROM python:3.12.1@sha256:4f8b...
FROM alpine:3.19.1@sha256:c5b1...
```

## Fix safety
Safe: the new reference names exactly the image the old one pulls today (the same manifest
digest; for a multi-platform image, the same index, so every platform still gets its own image),
so a build today is the same build. What changes is later: the pinned build no longer follows new
releases (use DO410 outdated-base-pin to bump pins). Two caveats, stated in the message when they
apply: a builder holding an older ``latest`` in its local image store (built without ``--pull``)
built that older image before the fix, and an answer taken offline from a cache entry older than
the cache's time-to-live may no longer be what the tag points to: such fixes are unsafe.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.registry.resolve import Resolution
from dopt.transforms._images import (
    PIN_HINT,
    STALE_NOTE,
    BaseImage,
    SharedDefaults,
    base_images,
    explanation,
    lookups,
)


class BaseImageLatest(Rule):
    code = "DO400"
    name = "base-image-latest"
    summary = "FROM image without a tag, or with :latest; pin it to the release and digest it points to now"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        answers = lookups(ctx)
        shared = SharedDefaults()
        for base in base_images(ctx):
            ref = base.ref
            if ref is None or ref.digest is not None or ref.tag not in (None, "latest"):
                continue
            if not shared.first(base):
                continue
            what = (
                f"{base.where} has no tag, so it means :latest"
                if ref.tag is None
                else f"{base.where} uses the tag latest"
            )
            message = f"{what}, which moves with every release: two builds of this Dockerfile can get different images"
            start, end = base.edit_span
            found = answers.answer(base, PIN_HINT)
            if isinstance(found, str):
                yield self.finding(ctx, start, end, f"{message}; {found}")
                continue
            if not found.changed:
                yield self.finding(
                    ctx, start, end, f'{message}; {explanation(found)}; set pin = "digest" or "both" to pin it exactly'
                )
                continue
            yield self._fixed(ctx, base, found, message, start, end, stale=base.text in answers.stale)

    def _fixed(
        self, ctx: Context, base: BaseImage, found: Resolution, message: str, start: int, end: int, *, stale: bool
    ) -> Finding:
        edit = base.edit(found.text)
        note = ""
        if stale:
            note = STALE_NOTE
        if edit is None:
            return self.finding(
                ctx,
                start,
                end,
                f"{message}; {explanation(found)}; the reference is built from ARGs, so pin their defaults by hand",
            )
        fix = self.make_fix(
            f"pin {base.text} to {found.text}",
            edit,
            safety=FixSafety.UNSAFE if stale else FixSafety.SAFE,
        )
        return self.finding(ctx, start, end, f"{message}; {explanation(found)}{note}", fix)
