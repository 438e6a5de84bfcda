"""DO224 npm-cache-clean: clear npm's cache in the RUN that fills it.

## What it does
After `npm ci`, `npm install` (also `npm i`, `npm update`, global installs), appends
`npm cache clean --force` at the end of the RUN, unless the RUN already cleans the cache
(`npm cache clean`, `rm -rf ~/.npm`) or keeps it in a cache mount.

With `--cache-mounts` it adds `--mount=type=cache,target=/root/.npm` to the RUN instead (when it
runs as root and `npm_config_cache` does not move the cache), so rebuilds reuse downloaded
packages without putting them in the image.

## Why
npm keeps a compressed copy of every package it downloads in `~/.npm/_cacache`: for a typical
web application tens to hundreds of MB, next to the same packages unpacked in `node_modules`.
Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN npm ci
```
becomes
```dockerfile
RUN npm ci && npm cache clean --force
```

## Fix safety
Safe: the cache only speeds up later installs, and nothing installs again in the image.
`--force` is required since npm 5 to clear it; it is not dangerous here. `&&` keeps the RUN's exit
status.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CleanupRule, RunScript, command_text, env_set, has_cache_mount, runs_as_root

CACHE = "/root/.npm"
FILLERS = frozenset(
    {"install", "i", "ci", "add", "update", "up", "upgrade", "isntall", "clean-install", "install-ci-test"}
)


class NpmCacheClean(CleanupRule):
    code = "DO224"
    name = "npm-cache-clean"
    summary = "npm's download cache (~/.npm) left in the image"
    fix_safety = FixSafety.SAFE

    programs = ("npm",)
    cache_paths = (CACHE, ".npm")

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.subcommand in FILLERS

    def disabled(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        variables = ctx.model.scope_of(script.ins).variables()
        folder = variables.get("npm_config_cache") or variables.get("NPM_CONFIG_CACHE")
        return bool(folder) and has_cache_mount(script.ins, folder)

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.program == "npm" and inv.subcommand == "cache":
            return any(w.value in ("clean", "clear", "rm") for w in inv.operands)
        return inv.program == "rm" and any(
            w.text.rstrip("/*").endswith((".npm", ".npm/_cacache")) for w in inv.operands
        )

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        return "npm cache clean --force"

    def mount_targets(self, ctx: Context, script: RunScript, inv: Invocation) -> list[str] | None:
        ins = script.ins
        if not runs_as_root(ctx, ins) or env_set(ctx, ins, "npm_config_cache") or env_set(ctx, ins, "NPM_CONFIG_CACHE"):
            return None
        return [CACHE]

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        return (
            f"`{command_text(inv, inv.subcommand_word)}` keeps a copy of every downloaded package in ~/.npm, "
            "which ends up in the image; end the RUN with `npm cache clean --force`"
        )
