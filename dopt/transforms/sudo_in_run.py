"""DO252 sudo-in-run: ``sudo`` in a RUN.

## What it does
Reports ``sudo`` in RUN scripts, also behind other wrappers (``env X=1 sudo ...``) and inside
subshells, ``if`` bodies and command substitutions. Same meaning as hadolint's DL3004.

## Why
RUN already runs as the ``USER`` in force, root unless the Dockerfile changed it. ``sudo`` needs
its own package and configuration, behaves differently without a terminal and can hang on a
password prompt. To run steps as root, put them before ``USER`` (or switch with ``USER root``
and back); to drop privileges at run time, use ``USER`` or a tool such as ``gosu``.

## Example
```dockerfile
USER app
RUN sudo apt-get install -y curl
```
Write instead:
```dockerfile
RUN apt-get install -y curl
USER app
```

## Fix
None: where the command should run, and as whom, depends on the rest of the Dockerfile.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.optimizer.shell import invocation_of
from dopt.transforms._runs import run_scripts


class SudoInRun(Rule):
    code = "DO252"
    name = "sudo-in-run"
    summary = "sudo in a RUN; RUN already runs as the USER in force"
    hadolint = "DL3004"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            for script in run_scripts(ins):
                for command in script.shell.commands():
                    invocation = invocation_of(command)
                    wrappers = invocation.wrappers if invocation is not None else ()
                    first = command.words[0].value if command.words else None
                    if "sudo" not in wrappers and (first or "").rsplit("/", 1)[-1] != "sudo":
                        continue
                    word = next(w for w in command.words if (w.value or "").rsplit("/", 1)[-1] == "sudo")
                    shown = script.shell.text[command.start : command.end]
                    message = (
                        f"`{shown}`: RUN already runs as the USER in force (root unless changed); run the step "
                        "before `USER` or switch with `USER root` instead of using sudo"
                    )
                    yield self.finding(ctx, *script.source_span(word.start, word.end), message)
