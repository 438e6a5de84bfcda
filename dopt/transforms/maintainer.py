"""DO101 maintainer-deprecated: replace ``MAINTAINER`` with ``LABEL maintainer=...``.

## What it does
Rewrites ``MAINTAINER Jane Doe <jane@example.com>`` into
``LABEL maintainer="Jane Doe <jane@example.com>"``.

## Why
``MAINTAINER`` has been deprecated since Docker 1.13. A label is what registries, ``docker
inspect`` and scanners read, and it can be set with the image's other labels. Same meaning as
hadolint's DL4000.

## Example
```dockerfile
MAINTAINER Jane Doe <jane@example.com>
```
becomes
```dockerfile
LABEL maintainer="Jane Doe <jane@example.com>"
```

## Fix safety
Unsafe: the image's ``Author`` field is no longer set (the information moves to the
``maintainer`` label), which a tool reading ``Author`` would notice.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, Rule
from dopt.optimizer.semantic import expand
from dopt.optimizer.syntax import Document


def _quote(value: str, escape: str) -> str:
    """A double-quoted LABEL value that BuildKit reads back as ``value``."""
    out = value.replace(escape, escape + escape).replace('"', escape + '"')
    return f'"{out}"'


class MaintainerToLabel(Rule):
    code = "DO101"
    name = "maintainer-deprecated"
    summary = "MAINTAINER is deprecated; use LABEL maintainer=..."
    fix_safety = FixSafety.UNSAFE
    hadolint = "DL4000"

    def check(self, ctx: Context) -> Iterator[Finding]:
        doc = ctx.document
        for ins in doc.instructions:
            if ins.sub is not None or ins.name != "MAINTAINER":
                continue
            fix = None
            # Only single-line instructions: a continuation would need its comments placed somewhere.
            if ins.args and ins.line == ins.end_line and "$" not in ins.args:
                start = ins.keyword_start
                end = ins.args_end
                text = "LABEL maintainer=" + _quote(ins.args, doc.escape)
                fix = self.make_fix("replace MAINTAINER with LABEL maintainer=...", Edit(start, end, text))
            yield self.at_instruction(ctx, ins, "MAINTAINER is deprecated; use LABEL maintainer=...", fix)

    def verify(self, before: Document, after: Document) -> str | None:
        removed = {i.args for i in before.instructions if i.name == "MAINTAINER"} - {
            i.args for i in after.instructions if i.name == "MAINTAINER"
        }
        labels = {
            expand(i.values[1], {}, after.escape)
            for i in after.instructions
            if i.name == "LABEL" and i.values[:1] == ("maintainer",)
        }
        missing = removed - labels
        return f"no LABEL carries the maintainer text {sorted(missing)[0]!r}" if missing else None
