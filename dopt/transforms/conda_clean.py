"""DO236 conda-clean: clean conda's package cache in the RUN that fills it.

## What it does
After `conda install`, `conda create`, `conda update`, `conda env create`/`update` (and the same
with `mamba` or `micromamba`), appends `conda clean -afy` (`mamba clean -afy`,
`micromamba clean --all --yes`) at the end of the RUN, unless the RUN already runs a `clean`
after the last install.

## Why
conda keeps every package it downloaded, both the archive and an extracted copy, in its `pkgs`
folder; the environments hold hard links or copies of them. The archives and index caches are
often hundreds of MB and never used again in a container. Only stages that end up in the final
image are checked.

## Example
```dockerfile
RUN conda install -y numpy
```
becomes
```dockerfile
RUN conda install -y numpy && conda clean -afy
```

## Fix safety
Safe with conda's default linking (hard links, or copies): the environments keep their files
when the package cache is emptied. It would break environments installed with symbolic links
into the cache (`allow_softlinks`), so RUNs that mention that setting are left alone.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import CleanupRule, RunScript, action_word, command_text, mentioned_before

ACTIONS = ("install", "create", "update", "upgrade", "env create", "env update")


class CondaClean(CleanupRule):
    code = "DO236"
    name = "conda-clean"
    summary = "conda's package cache left in the image"
    fix_safety = FixSafety.SAFE

    programs = ("conda", "mamba", "micromamba")
    cache_paths = ("/opt/conda/pkgs",)

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if "softlink" in script.text or mentioned_before(ctx, script.ins, "softlink"):
            return False
        return action_word(inv, ACTIONS) is not None

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return (inv.program in self.programs and inv.subcommand == "clean") or super().is_cleanup(ctx, script, inv)

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        if inv.program == "micromamba":
            return "micromamba clean --all --yes"
        return f"{inv.program} clean -afy"

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        action = command_text(inv, action_word(inv, ACTIONS))
        return (
            f"`{action}` leaves every downloaded package archive in conda's pkgs folder, which ends up in the "
            f"image; end the RUN with `{self.cleanup(ctx, script, inv)}`"
        )
