"""DO232 zypper-non-interactive: run zypper with `--non-interactive`.

## What it does
Adds the global option `--non-interactive` right after `zypper` in `zypper install` (also `in`,
`remove`/`rm`, `update`/`up`, `patch`, `dist-upgrade`/`dup`, `source-install`/`si`,
`install-new-recommends`) unless `-n`/`--non-interactive` or `-y`/`--no-confirm` is given or
the command reads a pipe.

## Why
Without it zypper asks "Continue? [y/n/v/...? shows all options] (y)" and a build has no one to
answer: zypper gets end of input and aborts.

## Example
```dockerfile
RUN zypper install curl
```
becomes
```dockerfile
RUN zypper --non-interactive install curl
```

## Fix safety
Safe: non-interactive mode takes the default answer to every question, which is what the build
would need to go on; where zypper did not ask, nothing changes. Licence confirmations still need
`--auto-agree-with-licenses`, as before.

Same as hadolint's DL3034.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety
from dopt.transforms._packages import PackageRule, action_word, command_text, piped_input, run_scripts

ACTIONS = ("install", "in", "remove", "rm", "update", "up", "patch", "dist-upgrade", "dup", "source-install", "si",
           "install-new-recommends", "inr")  # fmt: skip


class ZypperNonInteractive(PackageRule):
    code = "DO232"
    name = "zypper-non-interactive"
    summary = "zypper without `--non-interactive` stops at a prompt and fails the build"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3034"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            for inv in script.invocations("zypper"):
                word = action_word(inv, ACTIONS)
                if word is None or inv.has_option("-n", "--non-interactive", "-y", "--no-confirm"):
                    continue
                if piped_input(inv):
                    continue
                action = command_text(inv, word)
                edit = script.insert_after(inv.program_word, " --non-interactive")
                fix = self.fix_or_none(f"run `{action}` with `--non-interactive`", [edit])
                message = (
                    f"`{action}` without `--non-interactive` asks questions, and a build has no one to answer: "
                    "zypper aborts and the build fails"
                )
                yield self.command_finding(ctx, script, inv.command, message, fix)
