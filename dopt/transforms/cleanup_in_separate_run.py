"""DO201 cleanup-in-separate-run: a RUN that only deletes what the RUN before it created.

## What it does
Finds RUN instructions that do nothing but clean up: ``apt-get clean``, ``rm -rf
/var/lib/apt/lists/*``, ``yum clean all``, ``apk del``, ``pip cache purge``, ``npm cache clean
--force``, ``rm -rf`` of package caches or of paths the earlier RUN wrote to. When the RUN that
created those files is the RUN right before it, the clean-up is folded into that RUN (joined with
``&&``, one command per line, comment lines kept), under the same conditions as DO200: same
flags, only comments between them, a shell join that provably keeps the meaning. When the
creating RUN is further up, or the two cannot be joined, the finding says so without a fix.

This rule is on by default and does not depend on ``merge-runs``.

## Why
Image layers only add: a file deleted by a later RUN still takes space in the layer that
created it. A clean-up step saves space only in the RUN that downloads or installs.

## Example
```dockerfile
RUN apt-get update && apt-get install -y --no-install-recommends curl
RUN rm -rf /var/lib/apt/lists/*
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y --no-install-recommends curl \\
    && rm -rf /var/lib/apt/lists/*
```

## Fix safety
Safe: the clean-up runs at the same point, after the same commands, and only when they
succeeded, so the final image has the same files; it is smaller because the deleted files are
no longer stored in the lower layer.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.syntax import Instruction
from dopt.transforms._runs import chained, cleans_up_after, folds, pair_break_reason, stage_runs


class CleanupInSeparateRun(Rule):
    code = "DO201"
    name = "cleanup-in-separate-run"
    summary = "Clean-up in its own RUN does not make the image smaller; fold it into the RUN that made the files"
    fix_safety = FixSafety.SAFE
    fix_scope = FixScope.DOCUMENT  # the clean-up moves into the RUN that made the files

    def check(self, ctx: Context) -> Iterator[Finding]:
        handled = set()
        for fold in folds(ctx, "cleanup"):
            handled.add(fold.second.start)
            message = (
                f"`{fold.relation.what}` runs in a RUN of its own: the files it deletes stay in the layer of the RUN "
                f"at line {fold.first.line}, so the image is no smaller"
            )
            if fold.merge is None:
                yield self.at_instruction(ctx, fold.second, f"{message}; it cannot be joined to it: {fold.reason}")
                continue
            fix = self.make_fix(f"fold the clean-up into the RUN at line {fold.first.line}", fold.merge.edit)
            yield self.finding(ctx, fold.second.keyword_start, fold.merge.end, message, fix)
        for ins in ctx.document.instructions:
            if ins.name != "RUN" or ins.start in handled:
                continue
            runs = stage_runs(ctx, ins)
            earlier = [r for r in runs if r.end <= ins.start]
            for creator in reversed(earlier):
                what = cleans_up_after(ins, creator)
                if what is None:
                    continue
                if chained(ctx, creator, ins):
                    break  # neighbours whose relation folds() did not see: nothing to add
                message = (
                    f"`{what}` runs in a RUN of its own: the files it deletes stay in the layer of the RUN at line "
                    f"{creator.line}, so the image is no smaller; move it into that RUN"
                )
                if creator is earlier[-1] and _next_instruction(ctx, creator) is ins:
                    reason = pair_break_reason(ctx, creator, ins)
                    if reason:
                        message += f" (dopt does not join them: {reason})"
                yield self.at_instruction(ctx, ins, message)
                break


def _next_instruction(ctx: Context, ins: Instruction) -> Instruction | None:
    instructions = ctx.document.instructions
    for index, other in enumerate(instructions[:-1]):
        if other is ins:
            return instructions[index + 1]
    return None
