"""DO401 base-image-not-pinned: a FROM image less exactly pinned than the pinning policy asks.

## What it does
Active once a pinning policy is set (``pin`` in ``[tool.dopt.rules]``, or ``dopt fix --pin``).
Reports a ``FROM`` image whose

* tag floats more than ``pin-specificity`` allows, when ``pin`` is ``tag`` or ``both``: a
  major-only ``python:3`` under ``minor`` or ``patch``, ``node:20.11-alpine`` under ``patch``, or a
  tag made of moving words only (``stable``, ``lts-alpine``, ``bookworm-slim``). Tags of four or
  more digits (``20240110``) are dates or build numbers and count as exact;
* digest is missing, when ``pin`` is ``digest`` or ``both``.

``:latest`` and untagged images without digest are DO400's. With the registry's answer the fix
rewrites the reference, keeping the variant (``-slim``, ``-alpine``, ``-bookworm``):
``python:3.12-slim`` becomes ``python:3.12.1-slim@sha256:...`` under ``both``/``patch``, and the
message names the tags that share the digest. A reference that already has a digest keeps it:
if its tag now points elsewhere, the finding says so and leaves the bump to DO410. A ``FROM`` whose
build argument has no default is noted: which image it builds cannot be known here.

## Why
A floating tag is rebuilt and moved by its publisher: ``python:3.12-slim`` is a new image every
patch release and every Debian security update. A digest names one image forever; a full version
tag says which release that is.

## Example
```toml
[tool.dopt.rules]
pin = "both"
pin-specificity = "patch"
```
```dockerfile
FROM python:3.12-slim
```
becomes
```dockerfile
FROM python:3.12.1-slim@sha256:4f8b...
```

## Fix safety
Safe, for the reasons DO400 gives: the new reference names the image the old one pulls today.
Fixes from an offline run whose cached answer is older than the cache's time-to-live are unsafe.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.registry.reference import split_tag
from dopt.registry.resolve import PinMode
from dopt.transforms._images import (
    STALE_NOTE,
    BaseImage,
    SharedDefaults,
    base_images,
    explanation,
    is_date_like,
    is_floating_word_tag,
    lookups,
    policy,
    policy_configured,
)


def _reasons(base: BaseImage, mode: PinMode, level: int, level_name: str) -> list[str]:
    ref = base.ref
    assert ref is not None
    reasons: list[str] = []
    tag = ref.tag
    if tag is not None and mode in (PinMode.TAG, PinMode.BOTH):
        parsed = split_tag(tag)
        if parsed.specificity == 0:
            if tag == "latest" or is_floating_word_tag(tag):
                reasons.append(f"the tag {tag} names a moving target")
        elif parsed.specificity < level and not is_date_like(parsed):
            kind = {1: "major", 2: "minor"}.get(parsed.specificity, "floating")
            reasons.append(f"the tag {tag} is a floating {kind}-version tag (policy: {level_name} level)")
    if ref.digest is None and mode in (PinMode.DIGEST, PinMode.BOTH):
        reasons.append(f"it names no digest (policy: pin = {mode.value})")
    return reasons


class BaseImageNotPinned(Rule):
    code = "DO401"
    name = "base-image-not-pinned"
    summary = "FROM image tag or digest less exact than the pinning policy (pin, pin-specificity) asks"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        if not policy_configured(ctx):
            return
        chosen = policy(ctx)
        level_name = chosen.specificity.name.lower()
        answers = lookups(ctx)
        shared = SharedDefaults()
        for base in base_images(ctx):
            if base.unknown:
                yield self.finding(
                    ctx,
                    *base.span,
                    f"{base.word} comes from a build argument with no default: which image this builds "
                    "cannot be checked or pinned here; pass a pinned reference with --build-arg",
                )
                continue
            ref = base.ref
            if ref is None or (ref.digest is None and ref.tag in (None, "latest")):
                continue  # DO400
            if ref.tag is None:
                continue  # pinned by digest alone
            reasons = _reasons(base, chosen.pin, int(chosen.specificity), level_name)
            if not reasons:
                continue
            if not shared.first(base):
                continue
            start, end = base.edit_span
            message = f"{base.where} is not pinned: {' and '.join(reasons)}"
            found = answers.answer(base, f"run `dopt fix --pin {chosen.pin.value}` to pin it")
            if isinstance(found, str):
                yield self.finding(ctx, start, end, f"{message}; {found}")
                continue
            if ref.digest is not None and found.digest != ref.digest:
                yield self.finding(
                    ctx,
                    start,
                    end,
                    f"{message}; the tag {ref.tag} has moved on since {ref.digest} was pinned (it now points to "
                    f"{found.digest}), so a more specific tag cannot be told without changing the image: "
                    "DO410 outdated-base-pin can bump it",
                )
                continue
            if not found.changed:
                hint = "" if chosen.pin is not PinMode.TAG else '; set pin = "digest" or "both" to pin it exactly'
                yield self.finding(ctx, start, end, f"{message}; {explanation(found)}{hint}")
                continue
            edit = base.edit(found.text)
            if edit is None:
                yield self.finding(
                    ctx,
                    start,
                    end,
                    f"{message}; {explanation(found)}; the reference is built from ARGs, so pin their defaults by hand",
                )
                continue
            stale = base.text in answers.stale
            note = STALE_NOTE if stale else ""
            fix = self.make_fix(
                f"pin {base.text} to {found.text}", edit, safety=FixSafety.UNSAFE if stale else FixSafety.SAFE
            )
            yield self.finding(ctx, start, end, f"{message}; {explanation(found)}{note}", fix)
