"""DO221 poetry-cache: delete Poetry's download caches in the RUN that fills them.

## What it does
After `poetry install` (also `sync`, `add`, `update`, `lock`), appends
`rm -rf /root/.cache/pypoetry/artifacts /root/.cache/pypoetry/cache` to the RUN: the downloaded
distributions and the repository metadata. The virtual environments Poetry may keep in the same
folder (`virtualenvs/`) are left alone: they hold the installed packages. The cache folder is
taken from `POETRY_CACHE_DIR` or `XDG_CACHE_HOME` when ENV sets them; for a non-root user whose
home dopt cannot see, the finding has no fix.

With `--cache-mounts` it mounts BuildKit caches over those two folders instead, never over the
whole cache folder, for the same reason.

## Why
Poetry keeps every wheel and sdist it downloads in its cache, which then ships in the image,
often doubling the size of the installed dependencies. Poetry's own `--no-cache` option does not
help here: it only ignores the repository caches for that command, and the downloaded files still
go to `artifacts/`; nor is there an environment variable that switches the caches off
(`POETRY_CACHE_DIR` only moves them). Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN poetry install --no-root
```
becomes
```dockerfile
RUN poetry install --no-root && rm -rf /root/.cache/pypoetry/artifacts /root/.cache/pypoetry/cache
```

## Fix safety
Safe: the deleted folders are caches Poetry refills when it needs them; the installed packages
(in the system site-packages, `.venv` or `virtualenvs/`) are not touched.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    CleanupRule,
    RunScript,
    command_text,
    has_cache_mount,
    mentioned_before,
    tool_cache_dir,
)

ACTIONS = frozenset({"install", "sync", "add", "update", "lock"})


class PoetryCache(CleanupRule):
    code = "DO221"
    name = "poetry-cache"
    summary = "Poetry's download cache left in the image"
    fix_safety = FixSafety.SAFE

    programs = ("poetry",)
    cache_paths = ("pypoetry",)

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.subcommand in ACTIONS

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.program == "poetry" and inv.subcommand == "cache":
            return True
        folder = self._folder(ctx, script)
        return inv.program == "rm" and any(
            "pypoetry" in w.text or "POETRY_CACHE_DIR" in w.text or bool(folder and w.text.startswith(folder))
            for w in inv.operands
        )

    def mounted(self, ctx: Context, script: RunScript) -> bool:
        folder = self._folder(ctx, script)
        return has_cache_mount(script.ins, "pypoetry", *([f"{folder}/artifacts"] if folder else []))

    def _folder(self, ctx: Context, script: RunScript) -> str | None:
        if "config cache-dir" in script.text or mentioned_before(ctx, script.ins, "config cache-dir"):
            return None  # `poetry config cache-dir ...`: the folder is elsewhere
        return tool_cache_dir(ctx, script.ins, "POETRY_CACHE_DIR", "pypoetry")

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        folder = self._folder(ctx, script)
        return None if folder is None else f"rm -rf {folder}/artifacts {folder}/cache"

    def mount_targets(self, ctx: Context, script: RunScript, inv: Invocation) -> list[str] | None:
        folder = self._folder(ctx, script)
        return None if folder is None else [f"{folder}/artifacts", f"{folder}/cache"]

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        folder = self._folder(ctx, script)
        where = f"{folder}/artifacts" if folder else "Poetry's cache folder (artifacts/)"
        return (
            f"`{command_text(inv, inv.subcommand_word)}` keeps every downloaded distribution in {where}, "
            "which ends up in the image (`--no-cache` does not stop that)"
        )
