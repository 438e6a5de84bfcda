"""DO254 pipe-without-pipefail: a RUN pipes a command whose failure the pipe hides.

## What it does
Reports a RUN with a pipe (``curl ... | tar -x``) when neither the ``SHELL`` in force nor the
script itself (``set -o pipefail`` before the pipe) sets ``pipefail``. Pipes whose failure
cannot matter are left out: those fed by ``echo``, ``printf``, ``true`` or ``yes`` (which
``pipefail`` would turn into a failure), negated ones (``! a | b``), those in an ``if``/``while``
condition and those followed by ``||``. Same meaning as hadolint's DL4006.

The fix adds ``SHELL ["/bin/bash", "-o", "pipefail", "-c"]`` before the first such RUN of the
stage (above the comments that describe that RUN), when the stage's base image is known to have
bash (official ``debian``, ``ubuntu``, ``python``, ``node``, ``golang`` and ``buildpack-deps``
images that are not Alpine or Windows variants) and the stage has no ``SHELL`` yet.

## Why
A pipe's exit status is that of its last command. When ``curl`` fails in
``curl -fsSL https://example.com/app.tgz | tar -xz``, ``tar`` sees empty input, may still
succeed, and the build goes on without the files. With ``pipefail`` the RUN fails where the
problem is.

## Example
```dockerfile
FROM debian:12
RUN curl -fsSL https://example.com/app.tgz | tar -xz -C /opt
```
becomes
```dockerfile
FROM debian:12
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://example.com/app.tgz | tar -xz -C /opt
```

## Fix safety
Unsafe: every later RUN of the stage (and a shell-form ``CMD``/``ENTRYPOINT``/``HEALTHCHECK``)
then runs in bash instead of ``/bin/sh``, where some commands behave differently (``echo
"a\\nb"`` prints a backslash in bash and a newline in dash), and a pipe that failed unnoticed
now fails the build: that is the point, but it has to be looked at.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.semantic import DEFAULT_SHELL, Stage
from dopt.optimizer.shell import Command, ShellScript
from dopt.optimizer.syntax import Instruction, Trivia
from dopt.transforms._runs import run_scripts, shell_info

_BASH_IMAGES = frozenset({"debian", "ubuntu", "python", "node", "golang", "buildpack-deps"})
_NOT_BASH_TAGS = ("alpine", "windowsservercore", "nanoserver", "busybox")
_HARMLESS = frozenset({"echo", "printf", "true", ":", "yes"})
PIPEFAIL_SHELL = '["/bin/bash", "-o", "pipefail", "-c"]'


def _sets_pipefail(command: Command) -> bool:
    if not command.words or command.words[0].value != "set":
        return False
    words = [w.value or "" for w in command.words[1:]]
    for index, word in enumerate(words):
        if not word.startswith("-") or word == "--":
            break
        _, has_o, attached = word[1:].partition("o")
        if has_o and (attached or (words[index + 1] if index + 1 < len(words) else "")) == "pipefail":
            return True
    return False


def _hidden_failure(script: ShellScript) -> Command | None:
    """The first command whose failure a pipe hides, unless pipefail is set before it."""
    commands = script.commands()
    for command in commands:
        context = command.context
        if not context.in_pipeline or context.is_last_in_pipeline or context.negated:
            continue
        if context.in_condition or context.op_after == "||" or command.name is None:
            continue
        if (command.name.value or "").rsplit("/", 1)[-1] in _HARMLESS:
            continue
        if any(_sets_pipefail(c) for c in commands if c.end <= command.start):
            continue
        return command
    return None


def _has_bash(stage: Stage) -> bool:
    root = stage
    while root.parent is not None:
        root = root.parent
    reference = root.reference
    if reference is None or reference.domain != "docker.io" or not reference.path.startswith("library/"):
        return False
    tag = (reference.tag or "").lower()
    return reference.path.removeprefix("library/") in _BASH_IMAGES and not any(t in tag for t in _NOT_BASH_TAGS)


def _lineage(stage: Stage) -> Iterator[Stage]:
    """The stage and the earlier stages it is built on."""
    current: Stage | None = stage
    while current is not None:
        yield current
        current = current.parent


def _stage_has_shell(stage: Stage) -> bool:
    return any(i.name == "SHELL" for s in _lineage(stage) for i in s.instructions)


class PipeWithoutPipefail(Rule):
    code = "DO254"
    name = "pipe-without-pipefail"
    summary = "RUN with a pipe and no pipefail: a failure before the last command goes unnoticed"
    fix_safety = FixSafety.UNSAFE
    fix_scope = FixScope.DOCUMENT  # a SHELL instruction goes in ahead of the RUN
    hadolint = "DL4006"

    def check(self, ctx: Context) -> Iterator[Finding]:
        model = ctx.model
        fixed_stages: set[int] = set()
        for ins in ctx.document.instructions:
            if ins.name != "RUN":
                continue
            shell = model.scope_of(ins).shell
            info = shell_info(shell)
            if not info.posix or info.pipefail:
                continue
            for script in run_scripts(ins):
                if script.shell.has_errors:
                    continue
                command = _hidden_failure(script.shell)
                if command is None:
                    continue
                shown = script.shell.text[command.start : command.end]
                message = (
                    f"`{shown}` feeds a pipe, whose status is that of its last command: if it fails, the RUN "
                    "still succeeds; set pipefail in the SHELL (or `set -o pipefail` in a bash RUN)"
                )
                fix = None
                stage = model.stage_of(ins)
                if (
                    stage is not None
                    and not any(s.index in fixed_stages for s in _lineage(stage))
                    and tuple(shell) == DEFAULT_SHELL
                    and not _stage_has_shell(stage)
                    and _has_bash(stage)
                ):
                    fixed_stages.add(stage.index)
                    fix = self.make_fix(f"add SHELL {PIPEFAIL_SHELL} before this RUN", self._shell_edit(ctx, ins))
                yield self.finding(ctx, *script.source_span(command.start, command.end), message, fix)
                break

    def _shell_edit(self, ctx: Context, ins: Instruction) -> Edit:
        """Insert the SHELL line above the comment lines that lead into the RUN."""
        doc = ctx.document
        position = ins.start
        index = next(i for i, node in enumerate(doc.nodes) if node is ins)
        while index > 0:
            node = doc.nodes[index - 1]
            if not (isinstance(node, Trivia) and node.kind == "comment"):
                break
            position = node.start
            index -= 1
        indent = doc.source[ins.start : ins.keyword_start]
        keyword = "shell" if ins.keyword.islower() else "SHELL"
        return Edit(position, position, f"{indent}{keyword} {PIPEFAIL_SHELL}{doc.newline_at(ins.start)}")
