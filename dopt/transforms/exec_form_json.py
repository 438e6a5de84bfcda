"""DO002 exec-form-not-json: an argument that looks like exec form but is not valid JSON.

## What it does
Reports ``CMD``, ``ENTRYPOINT``, ``RUN``, ``SHELL``, ``COPY``, ``ADD`` and ``VOLUME`` arguments
that start with ``[`` but are not a JSON array of strings, such as ``CMD ['app']`` (single
quotes) or ``CMD ["app"`` (missing bracket).

## Why
BuildKit silently falls back to shell form: ``CMD ['app']`` runs ``/bin/sh -c "['app']"``, which
fails at run time with a confusing "not found".

## Example
```dockerfile
CMD ['python', 'app.py']
```
Write ``CMD ["python", "app.py"]`` instead.

## Fix
None: the intended words are a guess.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule

_EXEC_CAPABLE = frozenset({"CMD", "ENTRYPOINT", "RUN", "SHELL", "COPY", "ADD", "VOLUME"})


class ExecFormNotJson(Rule):
    code = "DO002"
    name = "exec-form-not-json"
    summary = "Looks like exec form but is not a JSON array; BuildKit treats it as a shell command"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            node = ins.sub or ins
            if node.name in _EXEC_CAPABLE and not node.json and node.args.startswith("["):
                yield self.at_instruction(
                    ctx,
                    ins,
                    f"{node.name} argument starts with '[' but is not a JSON array of strings "
                    "(use double quotes); BuildKit runs it as a shell command",
                )
