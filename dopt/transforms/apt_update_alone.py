"""DO214 apt-update-alone: `apt-get update` that nothing installs from.

## What it does
Reports a RUN that runs `apt-get update` (or `apt update`) when neither that RUN nor any later
one in the image installs anything with apt (`install`, `upgrade`, `dist-upgrade`, `build-dep`
...). Report only: whether the update is a leftover to delete or the install is missing is for
you to decide.

When a later RUN does install, the update is in the wrong place rather than useless: DO202
(update-in-separate-run) reports that and folds the update into the install's RUN.

## Why
The package lists `apt-get update` downloads (20 to 50 MB) are written into the layer of this
RUN and stay in the image, and nothing ever reads them. On top of that the RUN costs a network
round trip on every uncached build.

## Example
```dockerfile
FROM debian:bookworm
RUN apt-get update
COPY app /app
CMD ["/app/run"]
```
is reported at the `apt-get update` line: delete that RUN.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding
from dopt.optimizer.syntax import Instruction
from dopt.transforms._packages import (
    APT,
    APT_LIST_USERS,
    APT_RAW_USE,
    PackageRule,
    apt_lists_needed_later,
    command_text,
    in_final_image,
    later_instructions,
    run_script,
    run_scripts,
)


class AptUpdateAlone(PackageRule):
    code = "DO214"
    name = "apt-update-alone"
    summary = "`apt-get update` that no install uses: its package lists only add to the image"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            if not in_final_image(ctx, script.ins):
                continue
            apt = script.invocations(*APT)
            updates = [inv for inv in apt if inv.subcommand == "update"]
            if not updates:
                continue
            first = updates[0].command.start
            if any(inv.subcommand in APT_LIST_USERS and inv.command.start > first for inv in apt):
                continue
            if apt_lists_needed_later(ctx, script.ins) is not None or self._later_apt(ctx, script.ins):
                continue  # an install follows: DO202 folds the update into it
            message = (
                f"`{command_text(updates[0])}` but nothing in the image installs with apt afterwards: the package "
                "lists only add tens of MB to the image; remove the update, or install in this RUN"
            )
            yield self.command_finding(ctx, script, updates[0].command, message, None)

    @staticmethod
    def _later_apt(ctx: Context, ins: Instruction) -> bool:
        """Whether a later RUN installs with apt (with its own update or not)."""
        for other in later_instructions(ctx, ins):
            if other.name != "RUN":
                continue
            script = run_script(ctx.document, other, ctx.model.scope_of(other).shell)
            if script is None or script.shell.has_errors:
                if APT_RAW_USE.search(ctx.document.source[other.start : other.end]):
                    return True
            elif any(inv.subcommand in APT_LIST_USERS for inv in script.invocations(*APT)):
                return True
        return False
