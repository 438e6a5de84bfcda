"""DO233 zypper-clean: clean zypper's caches in the RUN that fills them.

## What it does
After `zypper install` (also `in`, `update`, `patch`, `dist-upgrade`, `refresh`, `source-install`),
appends `zypper clean --all` at the end of the RUN, unless the RUN already runs `zypper clean`
(or `zypper cc`) after the last install, deletes `/var/cache/zypp`, or keeps it in a cache mount.

## Why
zypper keeps repository metadata and downloaded packages in `/var/cache/zypp`, tens of MB the
running container never needs; a later RUN cannot remove them from this layer. Only stages that
end up in the final image are checked.

## Example
```dockerfile
RUN zypper --non-interactive install curl
```
becomes
```dockerfile
RUN zypper --non-interactive install curl && zypper clean --all
```

## Fix safety
Safe: zypper downloads the metadata again when it next needs it. `&&` keeps the RUN's exit
status.

Same as hadolint's DL3036.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CleanupRule, RunScript, command_text

FILLERS = frozenset({"install", "in", "update", "up", "patch", "dist-upgrade", "dup", "refresh", "ref",
                     "source-install", "si", "install-new-recommends", "inr"})  # fmt: skip


class ZypperClean(CleanupRule):
    code = "DO233"
    name = "zypper-clean"
    summary = "zypper's metadata and package cache left in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3036"

    programs = ("zypper",)
    cache_paths = ("/var/cache/zypp",)

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.subcommand in FILLERS

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return (inv.program == "zypper" and inv.subcommand in ("clean", "cc")) or super().is_cleanup(ctx, script, inv)

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        return "zypper clean --all"

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        return (
            f"`{command_text(inv, inv.subcommand_word)}` leaves repository metadata and packages in /var/cache/zypp, "
            "which end up in the image; end the RUN with `zypper clean --all`"
        )
