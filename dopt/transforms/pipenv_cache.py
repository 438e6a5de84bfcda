"""DO222 pipenv-cache: delete Pipenv's cache in the RUN that fills it.

## What it does
After `pipenv install` (also `sync`, `update`, `upgrade`, `lock`), appends
`rm -rf /root/.cache/pipenv` to the RUN. Pipenv runs pip with its cache in that folder, so this
removes the downloaded wheels too. The folder is taken from `PIPENV_CACHE_DIR` or
`XDG_CACHE_HOME` when ENV sets them; for a non-root user whose home dopt cannot see, the finding
has no fix. The virtual environments (in `~/.local/share/virtualenvs` or the project's `.venv`)
are elsewhere and not touched.

With `--cache-mounts` it mounts a BuildKit cache over that folder instead.

## Why
The cache holds every package Pipenv downloaded and resolved: as large as the dependencies, and
useless in a container. Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN pipenv install --system --deploy
```
becomes
```dockerfile
RUN pipenv install --system --deploy && rm -rf /root/.cache/pipenv
```

## Fix safety
Safe: the folder only holds caches that Pipenv and pip refill when they need them.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CleanupRule, RunScript, command_text, has_cache_mount, tool_cache_dir

ACTIONS = frozenset({"install", "sync", "update", "upgrade", "lock"})


class PipenvCache(CleanupRule):
    code = "DO222"
    name = "pipenv-cache"
    summary = "Pipenv's download cache left in the image"
    fix_safety = FixSafety.SAFE

    programs = ("pipenv",)
    cache_paths = (".cache/pipenv",)

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.subcommand in ACTIONS

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.program == "pipenv" and inv.subcommand is None and inv.has_option("--clear"):
            return True
        folder = tool_cache_dir(ctx, script.ins, "PIPENV_CACHE_DIR", "pipenv")
        return inv.program == "rm" and any(
            ".cache/pipenv" in w.text
            or "PIPENV_CACHE_DIR" in w.text
            or w.text.rstrip("/") in ("~/.cache", "/root/.cache")
            or bool(folder and w.text.startswith(folder))
            for w in inv.operands
        )

    def mounted(self, ctx: Context, script: RunScript) -> bool:
        folder = tool_cache_dir(ctx, script.ins, "PIPENV_CACHE_DIR", "pipenv")
        return has_cache_mount(script.ins, ".cache/pipenv", *([folder] if folder else []))

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        folder = tool_cache_dir(ctx, script.ins, "PIPENV_CACHE_DIR", "pipenv")
        return None if folder is None else f"rm -rf {folder}"

    def mount_targets(self, ctx: Context, script: RunScript, inv: Invocation) -> list[str] | None:
        folder = tool_cache_dir(ctx, script.ins, "PIPENV_CACHE_DIR", "pipenv")
        return None if folder is None else [folder]

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        folder = tool_cache_dir(ctx, script.ins, "PIPENV_CACHE_DIR", "pipenv") or "Pipenv's cache folder"
        return (
            f"`{command_text(inv, inv.subcommand_word)}` keeps the packages it downloaded in {folder}, "
            "which ends up in the image"
        )
