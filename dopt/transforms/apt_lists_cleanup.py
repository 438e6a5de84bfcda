"""DO212 apt-lists-cleanup: delete apt's package lists in the RUN that downloads them.

## What it does
When a RUN runs `apt-get update` and then installs, appends `rm -rf /var/lib/apt/lists/*` at
the end of that RUN (after the last install), unless the RUN already deletes the lists or keeps
them in a cache mount. It goes on a line of its own when the RUN is written over several lines,
in the style the RUN uses (`&&` at the start or at the end of lines).

With `--cache-mounts` it adds BuildKit cache mounts instead, so the lists and downloaded packages
are kept between builds but never written to the image:

```dockerfile
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean && \
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache && \
    apt-get update && apt-get install -y curl
```

The mounts cover `/var/lib/apt/lists`, not all of `/var/lib/apt` as many examples do:
`/var/lib/apt/extended_states` (which packages were installed automatically) must stay in the
image, or a later `apt-get autoremove` would not know what it may remove. The Debian and Ubuntu
images delete downloaded packages after every install (`/etc/apt/apt.conf.d/docker-clean`), which
would empty the package cache on every build, so that file is removed first (once per stage);
note that the image then keeps that setting. `sharing=locked` makes parallel builds wait for each
other, as apt's own locks require.

## Why
`apt-get update` downloads the package lists of every configured repository: 20 to 50 MB that
the running container never needs. A file deleted by a later RUN still takes space in the layer
that created it, so the lists must be deleted in the same RUN.

Only stages that end up in the final image are checked. When a later RUN installs packages
without running `apt-get update` itself, it depends on these lists: the finding then has no fix
and names that RUN (run `apt-get update` there first).

## Example
```dockerfile
RUN apt-get update && apt-get install -y curl
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
```

## Fix safety
Safe: the lists are only read by apt when it installs, and no later instruction installs
without downloading them again. `&&` keeps the RUN's exit status: when an install fails, the
build still fails. The cache-mount fix is safe for the same reasons: nothing that must be in the
image lies under the mounted paths.

Same as hadolint's DL3009.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Fix, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    APT,
    APT_LIST_USERS,
    PackageRule,
    RunScript,
    add_mounts,
    apt_lists_needed_later,
    cache_mount_flag,
    cache_mounts_wanted,
    earlier_instructions,
    has_cache_mount,
    in_final_image,
    mentioned_before,
    mount_conflict,
    mounts,
    run_scripts,
)

LISTS = "/var/lib/apt/lists"
CLEANUP = "rm -rf /var/lib/apt/lists/*"
MOUNT_TARGETS = ("/var/cache/apt", LISTS)
DOCKER_CLEAN = (
    "rm -f /etc/apt/apt.conf.d/docker-clean",
    "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache",
)


class AptListsCleanup(PackageRule):
    code = "DO212"
    name = "apt-lists-cleanup"
    summary = "Package lists from `apt-get update` left in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3009"

    def check(self, ctx: Context) -> Iterator[Finding]:
        candidates = [c for c in map(self._candidate, run_scripts(ctx)) if c is not None]
        mounting = cache_mounts_wanted(ctx)
        for index, (script, last) in enumerate(candidates):
            ins = script.ins
            if not in_final_image(ctx, ins):
                continue
            dependent = apt_lists_needed_later(ctx, ins)
            if dependent is not None:
                message = (
                    f"the package lists downloaded by `apt-get update` stay in the image, but line {dependent.line} "
                    "installs without `apt-get update` and needs them; run `apt-get update` there too, then delete "
                    f"the lists here with `{CLEANUP}`"
                )
                yield self.command_finding(ctx, script, last.command, message, None)
                continue
            if mounting:
                history = {id(i) for i in earlier_instructions(ctx, ins)}
                first = not any(id(other.ins) in history for other, _ in candidates[:index])
                fix = self._mount_fix(ctx, script, docker_clean=first)
                if fix is not None:
                    message = (
                        "the package lists downloaded by `apt-get update` (tens of MB) end up in the image; "
                        "keep them and the downloaded packages in BuildKit cache mounts instead"
                    )
                    yield self.command_finding(ctx, script, last.command, message, fix)
                    continue
            fix = self.fix_or_none(f"append `{CLEANUP}` after the last install", [script.append(CLEANUP)])
            message = (
                "the package lists downloaded by `apt-get update` (tens of MB) stay in this layer; "
                f"delete them in the same RUN with `{CLEANUP}`"
            )
            yield self.command_finding(ctx, script, last.command, message, fix)

    def _candidate(self, script: RunScript) -> tuple[RunScript, Invocation] | None:
        """The RUN and its last install, when it downloads lists, installs and keeps the lists."""
        if has_cache_mount(script.ins, LISTS, "/var/lib/apt"):
            return None
        apt = script.invocations(*APT)
        updates = [inv for inv in apt if inv.subcommand == "update"]
        if not updates:
            return None
        first = updates[0].command.start
        users = [inv for inv in apt if inv.subcommand in APT_LIST_USERS and inv.command.start > first]
        if not users or self._cleaned_after(script, users[-1]):
            return None  # no install: DO214 reports a lone `apt-get update`
        return script, users[-1]

    @staticmethod
    def _cleaned_after(script: RunScript, last: Invocation) -> bool:
        for command in script.shell.commands():
            if command.start > last.command.start and any(LISTS in (w.value or w.text) for w in command.words):
                return True
        return False

    def _mount_fix(self, ctx: Context, script: RunScript, *, docker_clean: bool) -> Fix | None:
        ins = script.ins
        present = {m.target for m in mounts(ins) if m.type == "cache"}
        targets = [t for t in MOUNT_TARGETS if t not in present]
        if mount_conflict(ctx, script, targets) is not None:
            return None
        flags = [cache_mount_flag(t, locked=True) for t in targets]
        handled = not docker_clean or "docker-clean" in script.text or mentioned_before(ctx, ins, "docker-clean")
        edits = add_mounts(ctx, script, flags, () if handled else DOCKER_CLEAN)
        return self.fix_or_none("keep apt's lists and packages in BuildKit cache mounts", edits)
