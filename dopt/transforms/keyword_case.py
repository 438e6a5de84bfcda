"""DO100 keyword-case: write instruction keywords in upper case.

## What it does
Rewrites ``from``, ``Run``, ``copy`` ... to ``FROM``, ``RUN``, ``COPY``, including the instruction
inside ``ONBUILD``.

## Why
Keywords are case-insensitive, but upper case is the convention every Dockerfile reference and
tool uses; mixed case makes instructions harder to spot among their arguments.

## Example
```dockerfile
from debian:12
run apt-get update
```
becomes
```dockerfile
FROM debian:12
RUN apt-get update
```

## Fix safety
Safe: BuildKit reads keywords case-insensitively, so the build is the same.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, Rule
from dopt.optimizer.syntax import Document


class KeywordCase(Rule):
    code = "DO100"
    name = "keyword-case"
    summary = "Instruction keyword not in upper case"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            edits = [
                Edit(node.keyword_start, node.keyword_start + len(node.keyword), node.keyword.upper())
                for node in (ins, ins.sub)
                if node is not None and node.is_known and node.keyword != node.keyword.upper()
            ]
            if edits:
                words = " ".join(e.text for e in edits)
                fix = self.make_fix(f"write {words} in upper case", *edits)
                yield self.at_instruction(ctx, ins, f"keyword '{ins.keyword}' should be upper case", fix)

    def verify(self, before: Document, after: Document) -> str | None:
        if [i.dump() for i in before.instructions] != [i.dump() for i in after.instructions]:
            return "changing keyword case changed what BuildKit parses"
        return None
