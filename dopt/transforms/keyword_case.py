"""DO100 keyword-case: write instruction keywords in upper case.

## What it does
Rewrites ``from``, ``Run``, ``copy`` ... to ``FROM``, ``RUN``, ``COPY``, including the instruction
inside ``ONBUILD`` and the ``AS`` of ``FROM image AS name``.

## Why
Keywords are case-insensitive, but upper case is the convention every Dockerfile reference and
tool uses; mixed case makes instructions harder to spot among their arguments.

## Example
```dockerfile
from debian:12 as build
run apt-get update
```
becomes
```dockerfile
FROM debian:12 AS build
RUN apt-get update
```

## Fix safety
Safe: BuildKit reads keywords case-insensitively, so the build is the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, Rule
from dopt.optimizer.syntax import Document, Instruction


def _stage_as_edit(ins: Instruction) -> Edit | None:
    """``as`` of ``FROM image as name`` in upper case (BuildKit warns when its case differs)."""
    if ins.name != "FROM" or len(ins.values) != 3 or ins.values[1] == "AS" or ins.values[1].lower() != "as":
        return None
    match = re.search(r"[\t\v\f\r ]([aA][sS])[\t\v\f\r ]", ins.args)
    if match is None:
        return None
    start, end = ins.source_range(ins.args_start + match.start(1), ins.args_start + match.end(1))
    return Edit(start, end, "AS")


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
            as_edit = _stage_as_edit(ins)
            if as_edit is not None:
                edits.append(as_edit)
            if edits:
                words = " ".join(e.text for e in edits)
                fix = self.make_fix(f"write {words} in upper case", *edits)
                wrong = ", ".join(f"'{e.text.lower()}'" for e in edits)
                yield self.at_instruction(ctx, ins, f"keyword {wrong} should be upper case", fix)

    def verify(self, before: Document, after: Document) -> str | None:
        if [_meaning(i) for i in before.instructions] != [_meaning(i) for i in after.instructions]:
            return "changing keyword case changed what BuildKit parses"
        return None


def _meaning(ins: Instruction) -> str:
    """The dump with FROM's ``AS`` in one case: BuildKit compares that word case-insensitively."""
    if ins.name == "FROM" and len(ins.values) == 3:
        return ins.dump().replace(f' "{ins.values[1]}" ', ' "as" ', 1)
    return ins.dump()
