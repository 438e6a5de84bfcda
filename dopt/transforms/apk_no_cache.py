"""DO216 apk-no-cache: install Alpine packages with `apk add --no-cache`.

## What it does
Adds `--no-cache` to `apk add` and `apk upgrade`. When every apk command of the RUN then uses it,
the `apk update` before them and an `rm -rf /var/cache/apk/*` after them have nothing left to do,
and the fix removes them too (unless a later RUN installs without downloading the index itself,
and so relies on the index `apk update` leaves behind). A RUN that already uses `--no-cache`
everywhere but still runs `apk update` gets only that removal.

## Why
Without `--no-cache`, apk keeps the package index it downloads (`/var/cache/apk/APKINDEX.*`, a
few MB per repository) in the layer. `--no-cache` downloads a fresh index, uses it and leaves
nothing behind, which makes both `apk update` and deleting `/var/cache/apk` unnecessary.

Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN apk update && apk add curl && rm -rf /var/cache/apk/*
```
becomes
```dockerfile
RUN apk add --no-cache curl
```

## Fix safety
Safe: `--no-cache` installs the same packages from an index fetched just then, as `apk update`
did; the index is simply not kept. `apk update` is only removed when nothing later depends on the
index it would leave.

Same as hadolint's DL3019.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    PackageRule,
    RunScript,
    action_word,
    has_cache_mount,
    in_final_image,
    is_rm_of,
    later_scripts,
    mentioned_before,
    run_scripts,
)

CACHE = "/var/cache/apk"
# apk subcommands that read the index
INDEX_USERS = frozenset({"add", "upgrade", "fix", "search", "fetch", "dot", "policy", "list", "version"})


def _no_index_needed(inv: Invocation) -> bool:
    """Whether the command fetches its own index (``--no-cache`` or ``--update``) or needs none."""
    return inv.subcommand not in INDEX_USERS or inv.has_option("--no-cache", "--update", "-U")


class ApkNoCache(PackageRule):
    code = "DO216"
    name = "apk-no-cache"
    summary = "`apk add` without `--no-cache` keeps the package index in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3019"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            ins = script.ins
            if not in_final_image(ctx, ins) or has_cache_mount(ins, CACHE):
                continue
            if mentioned_before(ctx, ins, "/etc/apk/cache"):
                continue  # apk's package cache is switched on on purpose
            apk = script.invocations("apk")
            missing = [
                inv
                for inv in apk
                if action_word(inv, ("add", "upgrade")) is not None and not inv.has_option("--no-cache")
            ]
            edits: list[Edit | None] = [
                script.insert_after(inv.subcommand_word, " --no-cache") for inv in missing if inv.subcommand_word
            ]
            leftovers = self._leftovers(ctx, script, apk, missing)
            if missing:
                first = missing[0]
                names = " and ".join(sorted({f"`apk {inv.subcommand}`" for inv in missing}))
                extra = " (and drop the `apk update`/cache removal it makes useless)" if leftovers else ""
                fix = self.fix_or_none(f"add `--no-cache`{extra}", edits + leftovers)
                message = (
                    f"{names} without `--no-cache` keeps the downloaded package index in {CACHE}; "
                    "`--no-cache` fetches it, uses it and leaves nothing behind"
                )
                yield self.command_finding(ctx, script, first.command, message, fix)
            elif leftovers or (apk and all(inv.subcommand == "update" for inv in apk)):
                update = next((inv for inv in apk if inv.subcommand == "update"), None)
                command = update.command if update is not None else apk[0].command
                if self._index_needed_later(ctx, script) or (not leftovers and self._installs_later(ctx, script)):
                    continue  # a later install uses the index, or DO202 folds the update into it
                fix = self.fix_or_none("remove what `--no-cache` makes useless", leftovers)
                message = (
                    "every `apk` command here uses `--no-cache`, so `apk update` only leaves an index in the image "
                    f"(and there is nothing in {CACHE} to delete)"
                )
                if not leftovers:
                    message = (
                        "`apk update` in a RUN that installs nothing only leaves the package index in the image; "
                        "use `apk add --no-cache` where packages are installed instead"
                    )
                yield self.command_finding(ctx, script, command, message, fix)

    def _leftovers(self, ctx: Context, script: RunScript, apk: list[Invocation], missing: list[Invocation]) -> list:
        """Removal edits for `apk update` and `rm -rf /var/cache/apk/*` once every apk command uses `--no-cache`."""
        fixed = {id(inv) for inv in missing}
        if not all(
            inv.subcommand == "update" or id(inv) in fixed or _no_index_needed(inv) for inv in apk
        ) or self._index_needed_later(ctx, script):
            return []
        edits = []
        for command in script.shell.commands():
            inv = command.invocation()
            if inv is None or command.context.scopes:
                continue
            removable = (inv.program == "apk" and inv.subcommand == "update" and not inv.operands) or (
                is_rm_of(inv, CACHE) and all((w.value or w.text).startswith(CACHE) for w in inv.operands)
            )
            if not removable:
                continue
            item = script.item_of(command)
            if len(item.commands) != 1 or command.redirects:
                continue
            edit = script.remove_item(item)
            if edit is not None:
                edits.append(edit)
        if len(edits) >= len(script.shell.items):
            return []  # nothing would be left to run
        return edits

    @staticmethod
    def _installs_later(ctx: Context, script: RunScript) -> bool:
        return any(
            later is None or any(inv.subcommand in ("add", "upgrade") for inv in later.invocations("apk"))
            for later in later_scripts(ctx, script.ins)
        )

    @staticmethod
    def _index_needed_later(ctx: Context, script: RunScript) -> bool:
        for later in later_scripts(ctx, script.ins):
            if later is None:
                return True
            for inv in later.invocations("apk"):
                if inv.subcommand == "update":
                    break
                if not _no_index_needed(inv):
                    return True
        return False
