"""DO410 outdated-base-pin: a pinned base image that its registry has moved past.

## What it does
For update bots and ``dopt fix --update-pins`` (opt-in: select DO410). Uses the registry answers
looked up before the run, and reports a pinned ``FROM`` image when

* its release line has a newer release: ``python:3.11.4-slim`` while ``python:3.11-slim`` now
  points to ``3.11.9-slim`` (the line is the tag without its last version part, variant kept);
* or its tag was rebuilt: ``python:3.11.4-slim@sha256:old`` while ``3.11.4-slim`` now points to
  another digest (publishers rebuild a release for base-OS security fixes).

The fix bumps the reference in the style it was pinned: tag and digest stay tag and digest, a tag
alone stays a tag alone. A tag with one version part or none (``3-slim@sha256:...``,
``bookworm@sha256:...``) can only get a new digest. Nothing is reported without an answer from
the registry; a failed look-up is reported with its reason.

## Why
Pinning makes builds repeatable, and stale: the pinned image stops receiving security fixes. A
bot that bumps pins in reviewed pull requests keeps both properties.

## Example
```dockerfile
FROM python:3.11.4-slim@sha256:0a1b...
```
becomes
```dockerfile
FROM python:3.11.9-slim@sha256:7c2d...
```

## Fix safety
Unsafe: the build gets a different (newer) base image, which is the point, and which is a change
of behaviour to review and test.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.registry.pinning import update_line
from dopt.registry.reference import split_tag
from dopt.registry.resolve import PinMode, Resolution, pin_reference
from dopt.transforms._images import SharedDefaults, base_images, describe_failure, is_date_like, lookups


class OutdatedBasePin(Rule):
    code = "DO410"
    name = "outdated-base-pin"
    summary = "Pinned FROM image is behind its registry (newer release on its line, or tag rebuilt); bump it"
    fix_safety = FixSafety.UNSAFE
    default_enabled = False

    def check(self, ctx: Context) -> Iterator[Finding]:
        answers = lookups(ctx)
        if not answers.looked_up:
            return
        shared = SharedDefaults()
        for base in base_images(ctx):
            ref = base.ref
            if ref is None or ref.tag is None:
                continue
            parsed = split_tag(ref.tag)
            pinned = ref.digest is not None or (parsed.specificity >= 2 or is_date_like(parsed))
            if not pinned:
                continue
            if not shared.first(base):
                continue
            start, end = base.edit_span
            mode = PinMode.BOTH if ref.digest is not None else PinMode.TAG
            line = update_line(ref)
            line_answer = answers.update(base) if line is not None else None
            own = answers.resolution(base)
            failures = [a for a in (line_answer, own) if a is not None and not isinstance(a, Resolution)]

            new_text = None
            message = None
            if isinstance(line_answer, Resolution) and line is not None and line_answer.tag and line_answer.digest:
                newer = split_tag(line_answer.tag)
                if (
                    (newer.variant, newer.prefix) == (parsed.variant, parsed.prefix)
                    and newer.version > parsed.version
                    and newer.specificity >= parsed.specificity
                ):
                    new_text = str(pin_reference(ref, line_answer.tag, line_answer.digest, mode))
                    sharing = ", ".join(line_answer.sharing_tags)
                    message = (
                        f"{base.where} is behind: {line} now points to {line_answer.tag} "
                        f"({line_answer.digest}; tags sharing it: {sharing})"
                    )
            rebuilt = isinstance(own, Resolution) and own.digest is not None and own.digest != ref.digest
            if message is None and ref.digest is not None and rebuilt:
                assert isinstance(own, Resolution) and own.digest is not None
                new_text = str(ref.with_digest(own.digest))
                message = (
                    f"{base.where} is behind: the tag {ref.tag} now points to {own.digest} (rebuilt since it "
                    "was pinned, often for base-OS security fixes)"
                )
            if message is None:
                if failures:
                    yield self.finding(
                        ctx,
                        start,
                        end,
                        f"{base.where} could not be checked for updates: {describe_failure(failures[0])}",
                    )
                continue
            assert new_text is not None
            edit = base.edit(new_text)
            if edit is None:
                yield self.finding(ctx, start, end, f"{message}; the reference is built from ARGs: update them by hand")
                continue
            fix = self.make_fix(f"bump {base.text} to {new_text}", edit)
            yield self.finding(ctx, start, end, message, fix)
