"""DO253 apt-upgrade: ``apt-get upgrade`` or ``dist-upgrade`` in a RUN.

## What it does
Reports ``apt-get upgrade``, ``apt-get dist-upgrade``, ``apt upgrade``, ``apt full-upgrade`` and
``aptitude safe-upgrade``/``full-upgrade`` in RUN scripts, through wrappers such as ``sudo`` and
inside any shell construct. Same meaning as hadolint's DL3005.

## Why
Upgrading every package makes the image depend on the day it was built, not on the Dockerfile:
two builds of the same file get different packages, and a cached layer hides the difference
until the cache is dropped. It also duplicates, in a new layer, every file the upgrade touches.
A newer base image gives the same fixes reproducibly; upgrade only the packages that need it
with ``apt-get install --only-upgrade <package>``.

## Example
```dockerfile
FROM debian:12
RUN apt-get update && apt-get upgrade -y
```
Use a recent tag or digest of the base image instead, and rebuild when it is updated.

## Fix
None: which packages need upgrading, or which base image to use, is the author's choice.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.optimizer.shell import invocation_of
from dopt.transforms._runs import run_scripts

_UPGRADES = {
    "apt-get": frozenset({"upgrade", "dist-upgrade"}),
    "apt": frozenset({"upgrade", "dist-upgrade", "full-upgrade"}),
    "aptitude": frozenset({"upgrade", "safe-upgrade", "full-upgrade", "dist-upgrade"}),
}


class AptUpgrade(Rule):
    code = "DO253"
    name = "apt-upgrade"
    summary = "apt-get upgrade/dist-upgrade makes the image depend on the build date; use a newer base image"
    hadolint = "DL3005"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            for script in run_scripts(ins):
                for command in script.shell.commands():
                    invocation = invocation_of(command)
                    if invocation is None or invocation.subcommand not in _UPGRADES.get(invocation.program, ()):
                        continue
                    word = invocation.subcommand_word
                    assert word is not None
                    shown = f"{invocation.program} {invocation.subcommand}"
                    message = (
                        f"`{shown}` upgrades whatever is newest on the day of the build, so two builds of this "
                        "Dockerfile differ; use a newer base image, or upgrade only the packages that need it"
                    )
                    start = invocation.program_word.start
                    yield self.finding(ctx, *script.source_span(start, word.end), message)
