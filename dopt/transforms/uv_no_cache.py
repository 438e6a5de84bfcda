"""DO220 uv-no-cache: do not keep uv's cache in the image.

## What it does
Adds `--no-cache` to `uv pip install`, `uv pip sync`, `uv sync`, `uv add` and `uv tool install`,
unless uv's cache is already out of the way: `UV_NO_CACHE` set (ENV, ARG, `export`, or on the
command), a cache mount over `~/.cache/uv` (or `UV_CACHE_DIR`), or `uv cache clean`/`uv cache
prune` later in the same RUN.

With `--cache-mounts` it adds `--mount=type=cache,target=/root/.cache/uv` to the RUN instead
(when the RUN runs as root and neither `UV_CACHE_DIR` nor `XDG_CACHE_HOME` moves the cache).
uv then copies files out of the cache, which lives on another file system, instead of
hard-linking them, and says so once; `ENV UV_LINK_MODE=copy` silences that.

## Why
uv keeps every downloaded and built wheel, unpacked, in `~/.cache/uv`: at least as large as the
installed packages. Nothing in a container reinstalls them, so the cache only makes the image
bigger. Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN uv pip install --system -r requirements.txt
```
becomes
```dockerfile
RUN uv pip install --no-cache --system -r requirements.txt
```

## Fix safety
Safe: with `--no-cache` uv works with a temporary cache and deletes it afterwards; it installs
exactly the same files.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CacheOptionRule


class UvNoCache(CacheOptionRule):
    code = "DO220"
    name = "uv-no-cache"
    summary = "uv's cache of downloaded and built wheels left in the image"
    fix_safety = FixSafety.SAFE

    programs = ("uv",)
    actions = ("pip install", "pip sync", "sync", "add", "tool install")
    option = "--no-cache"
    cache_paths = (".cache/uv", "/root/.cache/uv")
    env_switch = "UV_NO_CACHE"
    env_dirs = ("UV_CACHE_DIR",)
    mount_target = "/root/.cache/uv"

    def switched_off(self, inv: Invocation) -> bool:
        return inv.has_option("--no-cache", "-n", "--cache-dir")

    def is_cleanup(self, inv: Invocation) -> bool:
        if inv.program == "uv" and inv.subcommand == "cache":
            return any(w.value in ("clean", "prune") for w in inv.operands)
        return inv.program == "rm" and any(
            (w.value or w.text).rstrip("/*").endswith((".cache/uv", ".cache")) for w in inv.operands
        )

    def message(self, action: str) -> str:
        return f"`{action}` keeps every downloaded and built wheel in ~/.cache/uv, which ends up in the image"
