"""DO001 unknown-instruction: an instruction BuildKit does not know.

## What it does
Reports a line whose first word is not a Dockerfile instruction (``RUNN``, ``COPPY``, a stray
word left over from an edit).

## Why
BuildKit's parser reads such a line, but the build then stops with "unknown instruction". The
finding points at the line before a build fails on it.

## Example
```dockerfile
FROM debian:12
RUNN apt-get update
```

## Fix
None: dopt cannot know what was meant.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule


class UnknownInstruction(Rule):
    code = "DO001"
    name = "unknown-instruction"
    summary = "Instruction that BuildKit does not know; the build would fail"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            for node in (ins, ins.sub):
                if node is not None and not node.is_known:
                    yield self.at_instruction(ctx, ins, f"unknown instruction '{node.keyword}'")
