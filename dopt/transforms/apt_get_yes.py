"""DO210 apt-get-yes: answer apt's confirmation prompt with `-y`.

## What it does
Adds `-y` to `apt-get install` (and `apt install`, `upgrade`, `dist-upgrade`, `remove`, `purge`,
`autoremove`, `build-dep`) when neither `-y`/`--yes`/`--assume-yes`, `-qq` (which implies it),
nor `-o APT::Get::Assume-Yes=true` is given. The option goes right after the subcommand, wherever
the command stands in the script: after `sudo`, inside a subshell, in an `&&`/`||` list, across
line continuations.

## Why
When apt has to install more than the packages named (their dependencies) or remove anything, it
asks "Do you want to continue? [Y/n]". A build has no terminal: apt reads end of input, answers
"no" and exits with an error, and the build fails.

## Example
```dockerfile
RUN apt-get update && apt-get install curl
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y curl
```

## Fix safety
Safe: `-y` only answers the prompt. Where apt did not need to ask, the result is the same; where
it did, the build failed before. `-y` does not allow anything dangerous (downgrades, removing
essential packages, unauthenticated packages still need their own `--allow-*` options).
Commands that read a pipe (`yes | apt-get install ...`) and RUNs after a configuration file that
sets `APT::Get::Assume-Yes` are left alone.

Same as hadolint's DL3014.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    APT,
    OptionRule,
    RunScript,
    configured_before,
    count_short,
    option_values,
    piped_input,
)


class AptGetYes(OptionRule):
    code = "DO210"
    name = "apt-get-yes"
    summary = "`apt-get install` without `-y` stops at a confirmation prompt and fails the build"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3014"

    programs = APT
    actions = ("install", "upgrade", "dist-upgrade", "full-upgrade", "remove", "purge", "autoremove",
               "autopurge", "build-dep", "reinstall", "satisfy")  # fmt: skip
    option = "-y"

    def skip_run(self, ctx: Context, script: RunScript) -> bool:
        return configured_before(ctx, script.ins, "Assume-Yes", "apt.conf")

    def satisfied(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.has_option("-y", "--yes", "--assume-yes") or count_short(inv, "q", "--quiet") >= 2:
            return True
        if any("assume-yes" in value.lower() for value in option_values(inv, "-o", "--option")):
            return True
        if "Assume-Yes" in script.text[: inv.command.start]:
            return True
        return piped_input(inv)  # `yes | apt-get install`: the answers come from the pipe

    def message(self, inv: Invocation, action: str) -> str:
        return (
            f"`{action}` without `-y` asks for confirmation, and a build has no one to answer: "
            "apt aborts and the build fails"
        )
