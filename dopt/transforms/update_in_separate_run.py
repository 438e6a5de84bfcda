"""DO202 update-in-separate-run: ``apt-get update`` in a RUN of its own, before the RUN that installs.

## What it does
Finds a RUN that only refreshes package lists (``apt-get update``, ``apt update``, ``apk update``,
``yum makecache``, ``dnf makecache``, ``zypper refresh``) followed by a RUN that installs with
the same package manager. When the install is the next RUN, the update is folded into it
(``apt-get update && apt-get install ...``), under the same conditions as DO200: same flags, only
comments between them, a shell join that provably keeps the meaning. Otherwise the finding says
why, without a fix.

This rule is on by default and does not depend on ``merge-runs``.

## Why
Docker caches each RUN by its text. When the install line changes (a package is added), the
cached update layer is reused, with package lists that may be weeks old: the install then fails
with "404 Not Found" or installs outdated versions. In one RUN, the lists are refreshed whenever
the install changes. It also saves the layer that holds the lists (when the install's RUN
deletes them, see DO212).

## Example
```dockerfile
RUN apt-get update
RUN apt-get install -y --no-install-recommends curl
```
becomes
```dockerfile
RUN apt-get update \\
    && apt-get install -y --no-install-recommends curl
```

## Fix safety
Safe: the same commands run in the same order, the install only when the update succeeded, as
before; the final image has the same files.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.transforms._runs import chained, folds, installs, only_updates, pair_break_reason, parse_shell, stage_runs


class UpdateInSeparateRun(Rule):
    code = "DO202"
    name = "update-in-separate-run"
    summary = "Package-list update in its own RUN is cached apart from the install; run them in one RUN"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        handled = set()
        for fold in folds(ctx, "update"):
            handled.add(fold.first.start)
            message = (
                f"`{fold.relation.what}` runs in a RUN of its own: when the install at line {fold.second.line} "
                "changes, Docker reuses the cached, possibly outdated package lists"
            )
            if fold.merge is None:
                yield self.at_instruction(ctx, fold.first, f"{message}; it cannot be joined to it: {fold.reason}")
                continue
            fix = self.make_fix(f"run `{fold.relation.what}` in the RUN at line {fold.second.line}", fold.merge.edit)
            yield self.finding(ctx, fold.merge.start, fold.merge.end, message, fix)
        for ins in ctx.document.instructions:
            if ins.name != "RUN" or ins.start in handled:
                continue
            update = only_updates(ins)
            if update is None:
                continue
            manager, what = update
            later = [r for r in stage_runs(ctx, ins) if r.start >= ins.end]
            target = next((r for r in later if not r.json and r.args and installs(parse_shell(r.args), manager)), None)
            if target is None or chained(ctx, ins, target):
                continue
            message = (
                f"`{what}` runs in a RUN of its own: when the install at line {target.line} changes, Docker reuses "
                "the cached, possibly outdated package lists; run both in one RUN"
            )
            if target is later[0]:
                reason = pair_break_reason(ctx, ins, target)
                if reason:
                    message += f" (dopt does not join them: {reason})"
            yield self.at_instruction(ctx, ins, message)
