"""DO250 cd-in-run: ``cd`` in a RUN where WORKDIR says it better.

## What it does
Reports a RUN whose script changes directory with ``cd`` in its own shell (not inside a
subshell ``( cd x && make )`` or a command substitution, which scope the change on purpose).
One finding per RUN, at its first such ``cd``. Same meaning as hadolint's DL3003.

## Why
A ``cd`` lasts only until the end of its RUN: the next RUN, COPY, CMD and ENTRYPOINT start again
in the WORKDIR, which surprises readers and leads to paths that work in one instruction and not
the next. ``WORKDIR /src`` sets the directory for every instruction after it, creates it when
needed and shows in the image configuration.

## Example
```dockerfile
RUN cd /src && make && make install
```
Write instead:
```dockerfile
WORKDIR /src
RUN make && make install
```

## Fix
None: WORKDIR changes the directory of every later instruction too, so where to put it (and
whether to go back) is the author's decision.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.optimizer.shell import Scope
from dopt.transforms._runs import run_scripts

_SCOPED = (Scope.SUBSHELL, Scope.COMMAND_SUBSTITUTION, Scope.PROCESS_SUBSTITUTION, Scope.FUNCTION_BODY)


class CdInRun(Rule):
    code = "DO250"
    name = "cd-in-run"
    summary = "cd in a RUN lasts until the end of that RUN only; use WORKDIR"
    hadolint = "DL3003"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            for script in run_scripts(ins):
                found = next(
                    (
                        c
                        for c in script.shell.commands()
                        if c.name is not None
                        and c.name.value == "cd"
                        and not c.context.inside(*_SCOPED)
                        and not c.context.in_pipeline
                    ),
                    None,
                )
                if found is None:
                    continue
                target = next((w.value for w in found.arguments if not (w.value or "").startswith("-")), None)
                text = script.shell.text[found.start : found.end]
                advice = f"`WORKDIR {target}`" if target and target.startswith("/") else "WORKDIR"
                message = (
                    f"`{text}` changes the directory for the rest of this RUN only; use {advice}, which also "
                    "applies to the instructions after it"
                )
                yield self.finding(ctx, *script.source_span(found.start, found.end), message)
                break
