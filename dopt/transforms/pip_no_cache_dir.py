"""DO218 pip-no-cache-dir: do not keep pip's download cache in the image.

## What it does
Adds `--no-cache-dir` to `pip install` (also `pip3`, `pip3.11`, `python -m pip`, behind `sudo`
or `env`), unless pip's cache is already out of the way: `PIP_NO_CACHE_DIR` set by ENV, ARG,
`export` or on the command, `--cache-dir` given, a cache mount over `~/.cache/pip` (or
`PIP_CACHE_DIR`), or the cache removed later in the same RUN (`pip cache purge`,
`rm -rf ~/.cache/pip`). `pip download` and `pip wheel` are never touched: their output is the
point of running them.

With `--cache-mounts` it adds `--mount=type=cache,target=/root/.cache/pip` to the RUN instead
(when the RUN runs as root and neither `PIP_CACHE_DIR` nor `XDG_CACHE_HOME` moves the cache), so
rebuilds reuse downloaded wheels without putting them in the image.

## Why
pip keeps every wheel it downloads or builds in `~/.cache/pip`. In a container nothing installs
those packages a second time, so the cache is dead weight: often as large as the packages
themselves (hundreds of MB for `torch` or `tensorflow`). Only stages that end up in the final
image are checked.

## Example
```dockerfile
RUN pip install -r requirements.txt
```
becomes
```dockerfile
RUN pip install --no-cache-dir -r requirements.txt
```

## Fix safety
Safe: pip installs the same packages; it only does not store what it downloaded. The cache
mount is safe for the same reason, and is not used when the RUN works in or names a path below
the cache directory, or a later instruction uses one.

Same as hadolint's DL3042.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CacheOptionRule


class PipNoCacheDir(CacheOptionRule):
    code = "DO218"
    name = "pip-no-cache-dir"
    summary = "`pip install` without `--no-cache-dir` leaves pip's download cache in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3042"

    programs = ("pip",)
    actions = ("install",)
    option = "--no-cache-dir"
    cache_paths = (".cache/pip", "/root/.cache/pip")
    env_switch = "PIP_NO_CACHE_DIR"
    env_dirs = ("PIP_CACHE_DIR",)
    mount_target = "/root/.cache/pip"

    def switched_off(self, inv: Invocation) -> bool:
        return inv.has_option("--no-cache-dir", "--cache-dir")

    def is_cleanup(self, inv: Invocation) -> bool:
        if inv.program == "pip" and inv.subcommand == "cache":
            return any(w.value in ("purge", "remove") for w in inv.operands)
        return inv.program == "rm" and any(
            (w.value or w.text).rstrip("/*").endswith((".cache/pip", ".cache")) for w in inv.operands
        )

    def message(self, action: str) -> str:
        return f"`{action}` keeps every downloaded and built wheel in ~/.cache/pip, which ends up in the image"
