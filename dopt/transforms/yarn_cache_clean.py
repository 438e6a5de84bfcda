"""DO227 yarn-cache-clean: clear Yarn's cache in the RUN that fills it.

## What it does
After `yarn install` (also a bare `yarn` and `yarn add`), appends `yarn cache clean` at the end of
the RUN, unless the RUN already cleans it or keeps it in a cache mount.

With `--cache-mounts` it adds `--mount=type=cache,target=/usr/local/share/.cache/yarn` (root's
cache folder for Yarn 1) instead, when the RUN runs as root and `YARN_CACHE_FOLDER` does not move
the cache.

Yarn 2 and later ("berry", recognised by a `.yarnrc.yml` in the build context, a
`packageManager: "yarn@2..."` entry in `package.json`, `corepack` or `--immutable`) are left
alone: with Plug'n'Play the cache *is* where the installed packages live.

## Why
Yarn 1 keeps every package it downloads, unpacked, in its cache: about as large as
`node_modules` itself. Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN yarn install --frozen-lockfile
```
becomes
```dockerfile
RUN yarn install --frozen-lockfile && yarn cache clean
```

## Fix safety
Safe for Yarn 1: `node_modules` holds copies, not links into the cache, so the application does
not need the cache at run time. `&&` keeps the RUN's exit status.

Same as hadolint's DL3060.
"""

from __future__ import annotations

import re

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    CleanupRule,
    RunScript,
    command_text,
    env_set,
    has_cache_mount,
    mentioned_before,
    read_json,
    runs_as_root,
)

CACHE = "/usr/local/share/.cache/yarn"
BERRY = re.compile(r"^yarn@(?:[2-9]|\d\d)")


class YarnCacheClean(CleanupRule):
    code = "DO227"
    name = "yarn-cache-clean"
    summary = "Yarn's package cache left in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3060"

    programs = ("yarn",)
    cache_paths = (CACHE, ".cache/yarn")

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.subcommand not in (None, "install", "add") or self._berry(ctx, script, inv):
            return False
        return inv.subcommand is not None or not inv.operands

    def disabled(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        folder = ctx.model.scope_of(script.ins).variables().get("YARN_CACHE_FOLDER")
        return bool(folder) and has_cache_mount(script.ins, folder)

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.program == "yarn" and inv.subcommand == "cache":
            return any(w.value == "clean" for w in inv.operands)
        return inv.program == "rm" and any(
            ".cache/yarn" in w.text or "YARN_CACHE_FOLDER" in w.text for w in inv.operands
        )

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        return "yarn cache clean"

    def mount_targets(self, ctx: Context, script: RunScript, inv: Invocation) -> list[str] | None:
        if not runs_as_root(ctx, script.ins) or env_set(ctx, script.ins, "YARN_CACHE_FOLDER"):
            return None
        return [CACHE]

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        return (
            f"`{command_text(inv, inv.subcommand_word)}` keeps every package it downloads in Yarn's cache, which ends "
            "up in the image; end the RUN with `yarn cache clean`"
        )

    @staticmethod
    def _berry(ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.has_option("--immutable", "--immutable-cache") or "corepack" in script.text:
            return True
        if mentioned_before(ctx, script.ins, "corepack", "yarn set version", ".yarnrc.yml"):
            return True
        if ctx.context_dir is None:
            return False
        if (ctx.context_dir / ".yarnrc.yml").exists():
            return True
        package = read_json(ctx.context_dir / "package.json")
        manager = package.get("packageManager") if package else None
        return isinstance(manager, str) and bool(BERRY.match(manager))
