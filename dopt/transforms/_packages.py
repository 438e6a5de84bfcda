"""Machinery shared by the package-manager rules (DO210-DO249).

Every package-manager rule does the same few things: find the RUN scripts of a Dockerfile, find
the invocations of one program in them (through ``sudo``, subshells, ``&&``/``||`` lists and line
continuations), and then either add an option after the subcommand, append a clean-up command at
the end of the script, remove a command that became useless, or add a BuildKit cache mount to the
RUN. This module does those edits so that each lands on the right word and never inside quotes,
comments or here-documents that are data, and it answers the questions the rules share: is this
stage part of the final image, does a later RUN depend on what this one would delete, which
environment variables are set, which files a COPY brought into the image.

Positions: a :class:`RunScript` is the shell script of one RUN, either its arguments (offsets in
``Instruction.args``, mapped back to the source through the instruction's segments, so line
continuations are handled) or the body of a ``RUN <<EOF`` here-document that is the RUN's script.

Cache mounts: when ``ctx.options["cache-mounts"]`` is true (the command line's ``--cache-mounts``,
or ``cache-mounts = true`` under ``[tool.dopt.rules]``), the rules that delete a cache add a
BuildKit cache mount over it instead, where its place is known (root's home, no variable moving
it) and :func:`mount_conflict` finds nothing the image or a later instruction needs below it;
otherwise they fall back to deleting. ``RUN --mount`` needs BuildKit (Docker 18.09+ with
``DOCKER_BUILDKIT=1``, the default since 23.0), but no ``# syntax=`` line on Docker 20.10+.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dopt.optimizer.rules import Context, Edit, Finding, Fix, FixSafety, Rule
from dopt.optimizer.semantic import Stage, env_pairs
from dopt.optimizer.shell import Command, Invocation, ListItem, Scope, ShellScript, Word, parse_shell
from dopt.optimizer.syntax import Document, Heredoc, Instruction
from dopt.transforms._context import IgnorePattern, open_context

#: Shells whose scripts the shell layer understands (``SHELL ["pwsh", ...]`` is skipped).
POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"})
#: Option name the command line and ``[tool.dopt.rules]`` use for the cache-mount mode.
CACHE_MOUNTS_OPTION = "cache-mounts"
#: Operators that may join an item removed from a script to its neighbours.
_REMOVABLE_JOINS = frozenset({"&&", ";", "\n"})
_HEREDOC_ONLY = re.compile(r"<<-?[\t ]*(?:'[^']*'|\"[^\"]*\"|[^\s<>|&;]+)\Z")
_ROOT_USERS = frozenset({"root", "0", "0:0", "root:root"})


# ----------------------------------------------------------------------------------------------
# RUN scripts and edits on them
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunScript:
    """The shell script of one RUN instruction, with edits mapped back to the Dockerfile source."""

    doc: Document
    ins: Instruction
    shell: ShellScript
    heredoc: Heredoc | None = None  # set when the script is the body of ``RUN <<EOF``

    @property
    def text(self) -> str:
        return self.shell.text

    # -- positions -------------------------------------------------------------------------------

    def source_of(self, position: int) -> int:
        """Source offset of the script character at ``position``."""
        if self.heredoc is not None:
            return self.heredoc.body_start + position
        return self.ins.source_offset(self.ins.args_start + position)

    def insertion_point(self, position: int) -> int:
        """Source offset for inserting at ``position``: right after the character before it.

        Anchoring to the previous character keeps an insertion after a word on that word's line,
        before any line continuation that follows it.
        """
        if position <= 0:
            return self.source_of(0)
        return self.source_of(position - 1) + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Source span of script characters ``[start, end)``."""
        if end <= start:
            point = self.insertion_point(start)
            return point, point
        return self.source_of(start), self.source_of(end - 1) + 1

    # -- edits -------------------------------------------------------------------------------------

    def insert(self, position: int, text: str) -> Edit | None:
        """Insert ``text`` at a script position; None when that position is inside literal text."""
        if self.shell.has_errors or self.shell.is_literal(position):
            return None
        point = self.insertion_point(position)
        return Edit(point, point, text)

    def insert_after(self, word: Word, text: str) -> Edit | None:
        """Insert ``text`` right after ``word`` (``" -y"`` after ``install``)."""
        return self.insert(word.end, text)

    def replace(self, start: int, end: int, text: str) -> Edit | None:
        if self.shell.has_errors or self.shell.is_literal(start, end):
            return None
        source_start, source_end = self.span(start, end)
        if self._crosses_comment_line(source_start, source_end):
            return None
        return Edit(source_start, source_end, text)

    def replace_word(self, word: Word, text: str) -> Edit | None:
        return self.replace(word.start, word.end, text)

    def delete(self, start: int, end: int) -> Edit | None:
        """Delete script characters ``[start, end)``, where ``end`` starts text that stays.

        In the source the deletion runs up to where the kept text starts, so a line continuation
        and the indentation between the two go with the deleted text.
        """
        if self.shell.has_errors or self.shell.is_literal(start, end):
            return None
        source_start = self.source_of(start)
        source_end = self.source_of(end) if end < len(self.text) else self.insertion_point(end)
        if self._crosses_comment_line(source_start, source_end):
            return None
        return Edit(source_start, source_end, "")

    def _crosses_comment_line(self, start: int, end: int) -> bool:
        """Whether a Dockerfile comment line inside the RUN's continuation lies in ``[start, end)``."""
        return any(start < c_end and c_start < end for c_start, c_end in self.ins.comment_lines)

    def remove_item(self, item: ListItem) -> Edit | None:
        """Remove one top-level item (``apk update &&``) together with the operator joining it.

        Only when the operators around it are ``&&``, ``;`` or newlines, so the commands left keep
        the same conditions; never the only item.
        """
        items = self.shell.items
        index = items.index(item)
        if len(items) < 2:
            return None
        if index < len(items) - 1:
            if item.op_after not in _REMOVABLE_JOINS or (
                item.op_before is not None and item.op_before not in _REMOVABLE_JOINS
            ):
                return None
            return self.delete(item.start, items[index + 1].start)
        if item.op_before not in _REMOVABLE_JOINS:
            return None
        previous = items[index - 1]
        return self.delete(previous.end, item.end)

    def append(self, command: str) -> Edit | None:
        """Append ``&& command`` after the last top-level item of the script.

        ``&&`` keeps a failing script failing (a newline or ``;`` would hide the failure behind the
        appended command's status). On a RUN written over several lines the command goes on a line
        of its own, in the style the RUN already uses (``&&`` at the start or at the end of lines).
        """
        shell = self.shell
        if shell.has_errors or not shell.items:
            return None
        last = shell.items[-1]
        if last.background:
            return None
        if any(start >= last.end for start, _ in shell.comments):
            return None  # a trailing comment would swallow the appended text
        if any(h.start >= last.end for h in shell.heredocs):
            return None
        if shell.is_literal(last.end):
            return None
        if self.heredoc is not None:
            return self.insert(last.end, f" && {command}")
        style = self._continuation_style(last)
        if style is None:
            return self.insert(last.end, f" && {command}")
        leading, indent = style
        escape = self.doc.escape
        newline = self.doc.newline_at(self.insertion_point(last.end))
        if leading:
            return self.insert(last.end, f" {escape}{newline}{indent}&& {command}")
        return self.insert(last.end, f" && {escape}{newline}{indent}{command}")

    def prepend(self, command: str) -> Edit | None:
        """Put ``command &&`` before the first item of the script."""
        if self.shell.has_errors or not self.shell.items:
            return None
        return self.insert(self.shell.items[0].start, f"{command} && ")

    def _continuation_style(self, last: ListItem) -> tuple[bool, str] | None:
        """(``&&`` leads lines, indentation) of a RUN written over several lines; None for one line."""
        segments = [s for s in self.ins.segments if s.logical_start + s.length > self.ins.args_start]
        if len(segments) < 2:
            return None
        source = self.doc.source
        lines = [source[s.source_start : s.source_start + s.length] for s in segments[1:]]
        leading = any(line.lstrip().startswith(("&&", "||")) for line in lines)
        position = self.source_of(last.start)
        line_start = source.rfind("\n", 0, position) + 1
        if line_start > self.ins.keyword_start:
            text = source[line_start:position]
        else:  # the last item starts on the RUN line: indent like the continuation lines
            text = next((line for line in lines if line.strip()), "")
        indent = text[: len(text) - len(text.lstrip())]
        return leading, indent or "    "

    # -- commands ------------------------------------------------------------------------------

    def invocations(self, *programs: str) -> list[Invocation]:
        """Invocations of any of ``programs`` that run as code (not in a here-document's data)."""
        found = []
        for command in self.shell.commands():
            if Scope.HEREDOC in command.context.scopes:
                continue
            inv = command.invocation()
            if inv is not None and inv.program in programs:
                found.append(inv)
        return found

    def item_of(self, command: Command) -> ListItem:
        return self.shell.items[command.context.item]

    def exported_before(self, name: str, position: int) -> bool:
        """Whether the script sets ``name`` (``export NAME=``, ``NAME=`` or ``env NAME=``) before ``position``."""
        for command in self.shell.commands():
            if command.start >= position:
                break
            words = command.words
            if not words and any(a.text.startswith(f"{name}=") for a in command.assignments):
                return True
            if (
                words
                and words[0].value in ("export", "declare", "typeset")
                and any((w.value or w.text).startswith(f"{name}=") for w in words[1:])
            ):
                return True
        return False

    def finding_span(self, command: Command) -> tuple[int, int]:
        """Source span to report a problem with ``command`` (its first line)."""
        start = self.source_of(command.start)
        end = self.insertion_point(command.end)
        line_end = self.doc.source.find("\n", start)
        if 0 <= line_end < end:
            end = line_end
            if end > start and self.doc.source[end - 1] == "\r":
                end -= 1
        return start, max(end, start)


def command_env(inv: Invocation, name: str) -> bool:
    """Whether ``NAME=...`` is given on the command itself (``NAME=1 pip ...``, ``env NAME=1 pip``)."""
    if any(a.text.startswith(f"{name}=") for a in inv.command.assignments):
        return True
    return any((w.value or "").startswith(f"{name}=") for w in inv.command.words[: inv.start_index])


def shell_is_posix(shell: Sequence[str]) -> bool:
    return bool(shell) and shell[0].rsplit("/", 1)[-1] in POSIX_SHELLS


def run_script(doc: Document, ins: Instruction, shell: Sequence[str] = ("/bin/sh", "-c")) -> RunScript | None:
    """The script of a shell-form RUN (or of ``RUN <<EOF``), None for anything else."""
    if ins.name != "RUN" or ins.json or ins.sub is not None or not shell_is_posix(shell):
        return None
    if ins.heredocs:
        if len(ins.heredocs) != 1 or not _HEREDOC_ONLY.match(ins.args):
            return None  # heredocs feeding a command are data: leave the RUN alone
        heredoc = ins.heredocs[0]
        first_line = heredoc.content.split("\n", 1)[0]
        if first_line.startswith("#!") and not any(
            first_line.rstrip().endswith(name) or f"/{name} " in first_line or f" {name}" in first_line
            for name in POSIX_SHELLS
        ):
            return None  # a script for another interpreter
        return RunScript(doc, ins, parse_shell(heredoc.content), heredoc)
    if not ins.args:
        return None
    return RunScript(doc, ins, parse_shell(ins.args))


def run_scripts(ctx: Context) -> tuple[RunScript, ...]:
    """Every RUN script of the document that parses cleanly, in file order."""
    return ctx.shared(_run_scripts)


def _run_scripts(ctx: Context) -> tuple[RunScript, ...]:
    return tuple(_each_run_script(ctx))


def _each_run_script(ctx: Context) -> Iterator[RunScript]:
    model = ctx.model
    for ins in ctx.document.instructions:
        if ins.name != "RUN":
            continue
        script = run_script(ctx.document, ins, model.scope_of(ins).shell)
        if script is not None and not script.shell.has_errors:
            yield script


# ----------------------------------------------------------------------------------------------
# Options, operands and invocations
# ----------------------------------------------------------------------------------------------


def option_values(inv: Invocation, *names: str) -> list[str]:
    """Values of a value-taking option: ``-o X``, ``-oX``, ``--opt X`` and ``--opt=X``."""
    values: list[str] = []
    for words in (inv.options_before, inv.options_after):
        for index, word in enumerate(words):
            value = word.value or ""
            for name in names:
                if value == name and index + 1 < len(words):
                    values.append(words[index + 1].value or "")
                elif name.startswith("--") and value.startswith(f"{name}="):
                    values.append(value.split("=", 1)[1])
                elif not name.startswith("--") and value.startswith(name) and len(value) > len(name):
                    values.append(value[len(name) :])
    return values


def count_short(inv: Invocation, letter: str, long_name: str | None = None) -> int:
    """How often a flag is given: ``-qq`` and ``-q -q`` count 2, ``-q=2``/``--quiet=2`` count 2."""
    total = 0
    for words in (inv.options_before, inv.options_after):
        for word in words:
            value = word.value or ""
            if value.startswith("--"):
                name, _, level = value.partition("=")
                if long_name and name == long_name:
                    total += int(level) if level.isdigit() else 1
            elif value.startswith("-"):
                body, _, level = value[1:].partition("=")
                if level.isdigit() and body == letter:
                    total += int(level)
                else:
                    total += body.count(letter)
    return total


def action_word(inv: Invocation, actions: Iterable[str]) -> Word | None:
    """The word naming what ``inv`` does, when it is one of ``actions``.

    An action is a subcommand (``"install"``) or a subcommand and the operands right after it
    (``"pip install"`` for ``uv pip install``, whose subcommand is ``pip``); the last word of the
    matched action is returned, which is where an option for that action goes.
    """
    words = inv.command.words
    for action in actions:
        parts = action.split()
        if inv.subcommand != parts[0] or inv.subcommand_word is None:
            continue
        if len(parts) == 1:
            return inv.subcommand_word
        rest = inv.operands[: len(parts) - 1]
        if [w.value for w in rest] != parts[1:]:
            continue
        last = rest[-1]
        index = next(i for i, w in enumerate(words) if w is last)
        if inv.end_of_options_index is None or index < inv.end_of_options_index:
            return last
    return None


def piped_input(inv: Invocation) -> bool:
    """Whether the command reads a pipe (``yes | apt-get install``) and so may get its answers there."""
    return inv.command.context.pipeline_index > 0


def later_in_script(script: RunScript, after: int, predicate: Callable[[Invocation], bool]) -> bool:
    """Whether any invocation starting after ``after`` satisfies ``predicate``."""
    for command in script.shell.commands():
        if command.start < after:
            continue
        inv = command.invocation()
        if inv is not None and predicate(inv):
            return True
    return False


def is_rm_of(inv: Invocation, *prefixes: str) -> bool:
    """``rm -rf PATH...`` where some operand is one of ``prefixes`` or below one of them."""
    if inv.program != "rm":
        return False
    for word in inv.operands:
        value = word.value if word.value is not None else word.text
        for prefix in prefixes:
            clean = prefix.rstrip("/")
            if value.rstrip("/*") == clean or value.startswith(clean + "/") or value.rstrip("*") == clean:
                return True
    return False


# ----------------------------------------------------------------------------------------------
# Stages, scopes and the final image
# ----------------------------------------------------------------------------------------------


def stage_chain(ctx: Context, stage: Stage) -> list[Stage]:
    """``stage`` and the stages it is built on, nearest first."""
    chain = [stage]
    while chain[-1].parent is not None and len(chain) <= len(ctx.model.stages):
        chain.append(chain[-1].parent)  # type: ignore[arg-type]
    return chain


def image_stages(ctx: Context) -> set[int]:
    """Indices of the stages whose files end up in the final image (the last one and its bases)."""
    final = ctx.model.final_stage
    return {s.index for s in stage_chain(ctx, final)} if final else set()


def in_final_image(ctx: Context, ins: Instruction) -> bool:
    stage = ctx.model.stage_of(ins)
    return stage is not None and stage.index in image_stages(ctx)


def earlier_instructions(ctx: Context, ins: Instruction) -> list[Instruction]:
    """Instructions that ran before ``ins`` in its image: its stage's, and those of the stages below it."""
    stage = ctx.model.stage_of(ins)
    if stage is None:
        return []
    out: list[Instruction] = []
    for base in reversed(stage_chain(ctx, stage)[1:]):
        out.extend(base.instructions)
    for other in stage.instructions:
        if other is ins:
            break
        out.append(other)
    return out


def later_instructions(ctx: Context, ins: Instruction) -> list[Instruction]:
    """Instructions that run after ``ins`` on top of its result: the rest of its stage and every
    later stage built on it."""
    stage = ctx.model.stage_of(ins)
    if stage is None:
        return []
    out: list[Instruction] = []
    seen = False
    for other in stage.instructions:
        if seen:
            out.append(other)
        seen = seen or other is ins
    for later in ctx.model.stages[stage.index + 1 :]:
        if any(s is stage for s in stage_chain(ctx, later)[1:]):
            out.extend(later.instructions)
    return out


def later_scripts(ctx: Context, ins: Instruction) -> list[RunScript | None]:
    """The scripts of the RUNs after ``ins`` (None for a RUN whose script cannot be read)."""
    out: list[RunScript | None] = []
    for other in later_instructions(ctx, ins):
        if other.name == "RUN":
            script = run_script(ctx.document, other, ctx.model.scope_of(other).shell)
            out.append(script if script is not None and not script.shell.has_errors else None)
    return out


def env_set(ctx: Context, ins: Instruction, name: str) -> bool:
    """Whether ENV or ARG of this Dockerfile sets ``name`` for ``ins`` (any value)."""
    scope = ctx.model.scope_of(ins)
    if name in scope.env or scope.args.get(name) is not None:
        return True
    for other in earlier_instructions(ctx, ins):  # ENV values dopt could not expand
        if other.name == "ENV" and any(key == name for key, _ in env_pairs(other)):
            return True
    return False


def env_value(ctx: Context, ins: Instruction, name: str) -> str | None:
    return ctx.model.scope_of(ins).variables().get(name)


def runs_as_root(ctx: Context, ins: Instruction) -> bool:
    """Whether the RUN runs as root as far as the Dockerfile shows (no USER, or USER root)."""
    user = ctx.model.scope_of(ins).user
    return user is None or user.strip() in _ROOT_USERS


def stage_image(ctx: Context, ins: Instruction) -> str:
    """The external image the stage of ``ins`` is ultimately built from (lower case, "" if unknown)."""
    stage = ctx.model.stage_of(ins)
    if stage is None:
        return ""
    return stage_chain(ctx, stage)[-1].image.lower()


def mentioned_before(ctx: Context, ins: Instruction, *needles: str) -> bool:
    """Whether an earlier instruction of the image's history contains any of ``needles`` (e.g. a
    configuration file written by a RUN)."""
    source = ctx.document.source
    for other in earlier_instructions(ctx, ins):
        text = source[other.start : other.end]
        if any(needle in text for needle in needles):
            return True
    return False


def configured_before(ctx: Context, ins: Instruction, setting: str, *files: str) -> bool:
    """Whether an earlier instruction writes ``setting`` into a configuration file named by ``files``
    (``echo 'APT::Get::Assume-Yes "true";' > /etc/apt/apt.conf.d/90yes``, a COPY of such a file)."""
    source = ctx.document.source
    for other in earlier_instructions(ctx, ins):
        text = source[other.start : other.end]
        if setting.lower() in text.lower() and any(name in text for name in files):
            return True
    return False


# ----------------------------------------------------------------------------------------------
# BuildKit cache mounts
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    type: str
    target: str


def mounts(ins: Instruction) -> list[Mount]:
    """The ``--mount`` flags of a RUN."""
    found = []
    for flag in ins.flags:
        if flag.name != "mount" or flag.value is None:
            continue
        fields: dict[str, str] = {}
        for part in flag.value.split(","):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip()
        target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        found.append(Mount(fields.get("type", "bind"), posixpath.normpath(target) if target else ""))
    return found


def has_cache_mount(ins: Instruction, *paths: str) -> bool:
    """Whether a cache or tmpfs mount covers one of ``paths`` (a path, or a fragment such as ``.cache/pip``)."""
    for mount in mounts(ins):
        if mount.type not in ("cache", "tmpfs") or not mount.target:
            continue
        for path in paths:
            if path.startswith("/"):
                clean = posixpath.normpath(path)
                if clean == mount.target or clean.startswith(mount.target.rstrip("/") + "/"):
                    return True
            elif path in mount.target:
                return True
    return False


def cache_mounts_wanted(ctx: Context) -> bool:
    """Whether the user asked for cache mounts instead of deleting caches (``--cache-mounts``)."""
    value = ctx.options.get(CACHE_MOUNTS_OPTION, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def cache_mount_flag(target: str, *, locked: bool = False) -> str:
    return f"--mount=type=cache,target={target}" + (",sharing=locked" if locked else "")


def mount_conflict(ctx: Context, script: RunScript, targets: Sequence[str]) -> str | None:
    """Why a cache mount over ``targets`` would lose files the image needs; None when it would not.

    A mount hides what the RUN writes below its target, so nothing may use those files later: the
    RUN must not work in or name a path below it (other than to delete it), no later RUN without
    the same mount may name one, and no later ``COPY --from`` may copy one.
    """
    workdir = ctx.model.scope_of(script.ins).workdir
    for target in targets:
        inside = target.rstrip("/") + "/"
        if workdir and (workdir == target or workdir.startswith(inside)):
            return f"the working directory {workdir} is inside {target}"
        used = _names_path(script, target)
        if used:
            return f"`{used}` in the script names a path inside {target}"
        for other in ctx.document.instructions:
            if other.start <= script.ins.start:
                continue
            if other.name == "RUN" and not has_cache_mount(other, target):
                later = run_script(ctx.document, other, ctx.model.scope_of(other).shell)
                text = ctx.document.source[other.start : other.end]
                if (later is None and target in text) or (later is not None and _names_path(later, target)):
                    return f"the RUN on line {other.line} uses {target}"
            elif (
                other.name in ("COPY", "ADD")
                and any(f.name == "from" for f in other.flags)
                and any(v == target or v.startswith(inside) for v in other.values[:-1])
            ):
                return f"line {other.line} copies from {target}"
    return None


def _names_path(script: RunScript, target: str) -> str | None:
    """A word of the script (outside ``rm`` commands) naming ``target`` or a path below it."""
    inside = target.rstrip("/") + "/"
    for command in script.shell.commands():
        inv = command.invocation()
        if inv is not None and inv.program == "rm":
            continue
        for word in command.words:
            value = word.value or word.text
            if "=" in value and value.startswith("-"):
                value = value.split("=", 1)[1]
            if value == target or value.startswith(inside):
                return word.text
    return None


def add_mounts(ctx: Context, script: RunScript, flags: Sequence[str], prefix: Sequence[str] = ()) -> list[Edit]:
    """Edits adding ``--mount`` flags to the RUN, and the ``prefix`` commands (joined with ``&&``)
    before its script.

    One flag on a one-line RUN stays on that line; otherwise every flag and prefix command gets a
    line of its own, the way BuildKit's documentation writes them, with ``&&`` where the RUN puts it.
    """
    doc = ctx.document
    ins = script.ins
    point = ins.source_offset(ins.args_start)
    escape = doc.escape
    newline = doc.newline_at(ins.keyword_start)
    if script.heredoc is not None:  # `RUN --mount=... <<EOF`: the flags stay on the RUN line
        prepend = script.prepend(" && ".join(prefix)) if prefix else None
        if prefix and prepend is None:
            return []
        return [e for e in (prepend, Edit(point, point, " ".join(flags) + " ")) if e is not None]
    multi_line = len(ins.segments) > 1
    indent = "    "
    leading = False
    if multi_line:
        lines = [doc.source[s.source_start : s.source_start + s.length] for s in ins.segments[1:]]
        indent = next((line[: len(line) - len(line.lstrip())] for line in lines if line.strip()), "") or indent
        leading = any(line.lstrip().startswith(("&&", "||")) for line in lines)
    text = ""
    for command in prefix:
        if leading:
            text += f"{command} {escape}{newline}{indent}&& "
        else:
            text += f"{command} && {escape}{newline}{indent}"
    if ins.flags and not prefix:
        # Below the flags already there, one per line, and the script on a line of its own.
        last = ins.flags[-1].end
        edits = [Edit(last, last, "".join(f" {escape}{newline}{indent}{flag}" for flag in flags))]
        if "\n" not in doc.source[last:point]:
            edits.append(Edit(point, point, f"{escape}{newline}{indent}"))
        return edits
    if len(flags) == 1 and not multi_line and not prefix:
        return [Edit(point, point, f"{flags[0]} ")]
    text = "".join(f"{flag} {escape}{newline}{indent}" for flag in flags) + text
    return [Edit(point, point, text)]


# ----------------------------------------------------------------------------------------------
# Files a COPY brought in from the build context
# ----------------------------------------------------------------------------------------------

_UNKNOWN_WORKDIR = "/.dopt-unknown-workdir"


def _workdir(ctx: Context, ins: Instruction) -> str:
    return ctx.model.scope_of(ins).workdir or _UNKNOWN_WORKDIR


def _image_path(base: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(base, path))


def context_file(ctx: Context, relative: str) -> Path | None:
    """A file of the build context that a COPY would send (exists and is not ignored)."""
    context, _ = open_context(ctx)
    clean = posixpath.normpath(relative).lstrip("/")
    if context is None or clean.startswith(".."):
        return None
    return context.root / clean if context.is_file(clean) else None


def copied_from_context(ctx: Context, ins: Instruction, image_path: str) -> Path | None:
    """The build-context file that the latest COPY/ADD before ``ins`` put at ``image_path``.

    None when no COPY did, when one from another stage or a URL may have (so dopt cannot know),
    or when the build context is not available.
    """
    if ctx.context_dir is None or not ctx.context_dir.is_dir():
        return None
    known_dirs = {_workdir(ctx, other) for other in [*earlier_instructions(ctx, ins), ins]}
    for copy in reversed(earlier_instructions(ctx, ins)):
        if copy.name not in ("COPY", "ADD") or copy.heredocs or len(copy.values) < 2:
            continue
        *sources, dest = copy.values
        variables = ctx.model.scope_of(copy).variables()
        dest = _expand_simple(dest, variables)
        if dest is None:
            return None
        base = _workdir(ctx, copy)
        dest_path = _image_path(base, dest)
        from_other = any(f.name == "from" for f in copy.flags)
        dir_mode = (
            dest.endswith("/")
            or dest in (".", "./")
            or len(sources) > 1
            or any(ch in s for s in sources for ch in "*?[")
            or dest_path in known_dirs
        )
        for raw in sources:
            source = _expand_simple(raw, variables)
            if source is None or "://" in source:
                if dest_path == image_path or image_path.startswith(dest_path + "/"):
                    return None
                continue
            source = posixpath.normpath(source).lstrip("/") or "."
            if from_other:
                if dest_path == image_path or image_path.startswith(dest_path + "/"):
                    return None
                continue
            source_dir = ctx.context_dir / source
            if source == "." or source_dir.is_dir():
                if image_path.startswith(dest_path.rstrip("/") + "/"):
                    rel = image_path[len(dest_path.rstrip("/")) + 1 :]
                    found = context_file(ctx, posixpath.join(source, rel) if source != "." else rel)
                    if found is not None:
                        return found
                continue
            if dir_mode:
                if posixpath.dirname(image_path) != dest_path:
                    continue
                name = posixpath.basename(image_path)
                folder = posixpath.dirname(source)
                if IgnorePattern.compile(posixpath.basename(source), 0).match(name):
                    found = context_file(ctx, posixpath.join(folder, name))
                    if found is not None:
                        return found
            elif dest_path == image_path:
                found = context_file(ctx, source)
                if found is not None:
                    return found
    return None


def _expand_simple(text: str, variables: dict[str, str]) -> str | None:
    from dopt.optimizer.semantic import expand

    return expand(text, variables)


def read_json(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def workdir_of(ctx: Context, ins: Instruction) -> str:
    """The working directory of ``ins`` as an image path (a placeholder when the base sets it)."""
    return _workdir(ctx, ins)


def image_path(base: str, path: str) -> str:
    return _image_path(base, path)


# ----------------------------------------------------------------------------------------------
# The base class
# ----------------------------------------------------------------------------------------------


class PackageRule(Rule):
    """A rule about one package manager; checks that its rewrites keep every RUN script parseable."""

    def verify(self, before: Document, after: Document) -> str | None:
        broken_before = {ins.line for ins in before.instructions if _script_broken(before, ins)}
        broken_after = [ins.line for ins in after.instructions if _script_broken(after, ins)]
        if len(broken_after) > len(broken_before):
            return "the rewrite left a RUN script that no longer parses as shell"
        return None

    def command_finding(self, ctx: Context, script: RunScript, command: Command, message: str, fix: Fix | None):
        start, end = script.finding_span(command)
        return self.finding(ctx, start, end, message, fix)

    def fix_or_none(self, description: str, edits: Sequence[Edit | None], safety: FixSafety | None = None):
        """A fix from ``edits``, or None when any edit could not be made."""
        if not edits or any(e is None for e in edits):
            return None
        return self.make_fix(description, *edits, safety=safety)  # type: ignore[arg-type]


def _script_broken(doc: Document, ins: Instruction) -> bool:
    script = run_script(doc, ins)
    return script is not None and script.shell.has_errors


class OptionRule(PackageRule):
    """A rule that wants an option on some invocations (``-y``, ``--no-cache``, ``--no-document``).

    Subclasses name the programs and actions, the option to insert after the action word, and say
    when an invocation is already fine.
    """

    programs: ClassVar[tuple[str, ...]]
    actions: ClassVar[tuple[str, ...]]
    option: ClassVar[str]
    final_image_only: ClassVar[bool] = False

    def satisfied(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        raise NotImplementedError

    def message(self, inv: Invocation, action: str) -> str:
        raise NotImplementedError

    def skip_run(self, ctx: Context, script: RunScript) -> bool:
        return False

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            if self.final_image_only and not in_final_image(ctx, script.ins):
                continue
            if self.skip_run(ctx, script):
                continue
            for inv in script.invocations(*self.programs):
                word = action_word(inv, self.actions)
                if word is None or self.satisfied(ctx, script, inv):
                    continue
                action = command_text(inv, word)
                edit = script.insert_after(word, f" {self.option}")
                fix = self.fix_or_none(f"add `{self.option}` to `{action}`", [edit])
                yield self.command_finding(ctx, script, inv.command, self.message(inv, action), fix)


class CleanupRule(PackageRule):
    """A rule that wants a cache deleted at the end of the RUN that fills it, or kept in a cache mount.

    Only RUNs of stages that end up in the final image are checked: a cache in a stage that is
    only copied from never reaches the image. Subclasses say which invocations fill the cache,
    which commands clean it, the command to append, and where a cache mount would go (None when
    the mount mode does not apply).
    """

    programs: ClassVar[tuple[str, ...]]
    cache_paths: ClassVar[tuple[str, ...]] = ()  # absolute paths, or fragments such as ".cache/pip"

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        raise NotImplementedError

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        """Whether ``inv`` removes the cache (by default: ``rm`` of one of the absolute cache paths)."""
        return is_rm_of(inv, *(p for p in self.cache_paths if p.startswith("/")))

    def mounted(self, ctx: Context, script: RunScript) -> bool:
        """Whether a cache mount of the RUN already keeps the cache out of the image."""
        return has_cache_mount(script.ins, *self.cache_paths)

    def disabled(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        """Whether the cache is already switched off for ``inv`` (an option or an environment variable)."""
        return False

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        raise NotImplementedError

    def mount_targets(self, ctx: Context, script: RunScript, inv: Invocation) -> list[str] | None:
        return None

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        raise NotImplementedError

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            if not in_final_image(ctx, script.ins) or self.mounted(ctx, script):
                continue
            users = [
                inv
                for inv in script.invocations(*self.programs)
                if self.fills_cache(ctx, script, inv) and not self.disabled(ctx, script, inv)
            ]
            if not users:
                continue
            last = users[-1]
            if later_in_script(script, last.command.end, lambda i, s=script: self.is_cleanup(ctx, s, i)):
                continue
            fix = self._fix(ctx, script, last)
            yield self.command_finding(ctx, script, last.command, self.message(ctx, script, last), fix)

    def _fix(self, ctx: Context, script: RunScript, inv: Invocation) -> Fix | None:
        if cache_mounts_wanted(ctx):
            targets = self.mount_targets(ctx, script, inv)
            if targets and mount_conflict(ctx, script, targets) is None:
                flags = [cache_mount_flag(t) for t in targets]
                description = f"keep the cache in a BuildKit cache mount ({', '.join(targets)})"
                return self.fix_or_none(description, add_mounts(ctx, script, flags))
        command = self.cleanup(ctx, script, inv)
        if command is None:
            return None
        return self.fix_or_none(f"append `{command}` to the RUN", [script.append(command)])


def command_text(inv: Invocation, upto: Word | None = None) -> str:
    """``apt-get install`` for messages: the program, its subcommand and the action words up to
    ``upto`` (``uv pip install``), options and their values left out."""
    words = inv.command.words
    program = words[inv.program_index]
    shown = [program.value or program.text]
    if inv.program == "pip" and inv.program_index > inv.start_index:  # python -m pip
        shown.insert(0, f"{words[inv.start_index].value} -m")
    if inv.subcommand_word is not None:
        shown.append(inv.subcommand_word.value or inv.subcommand_word.text)
        if upto is not None and upto is not inv.subcommand_word:
            for word in inv.operands:
                shown.append(word.value or word.text)
                if word is upto:
                    break
    return " ".join(shown)


# ----------------------------------------------------------------------------------------------
# apt
# ----------------------------------------------------------------------------------------------

APT = ("apt-get", "apt")
#: apt subcommands that read the package lists written by ``apt-get update``.
APT_LIST_USERS = frozenset(
    {"install", "upgrade", "dist-upgrade", "full-upgrade", "build-dep", "source", "download", "reinstall", "satisfy"}
)
APT_RAW_USE = re.compile(r"\bapt(?:-get)?\b[^\n;&|]*?\b(?:install|upgrade|dist-upgrade|build-dep|source|download)\b")
#: Images whose apt configuration deletes downloaded packages after each install (docker-clean).
DOCKER_CLEAN_IMAGES = frozenset(
    {
        "debian", "ubuntu", "buildpack-deps", "python", "node", "golang", "ruby", "php", "perl", "rust",
        "openjdk", "eclipse-temurin", "gcc", "nginx", "httpd",
    }
)  # fmt: skip


def image_name(reference: str) -> str:
    """``docker.io/library/python:3.11-slim@sha256:...`` -> ``python``."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def apt_lists_needed_later(ctx: Context, ins: Instruction) -> Instruction | None:
    """The first later RUN that installs from apt's lists without running ``apt-get update`` itself.

    Deleting (or mounting away) the lists would break that RUN.
    """
    for other in later_instructions(ctx, ins):
        if other.name != "RUN":
            continue
        script = run_script(ctx.document, other, ctx.model.scope_of(other).shell)
        if script is None or script.shell.has_errors:
            text = ctx.document.source[other.start : other.end]
            if APT_RAW_USE.search(text) and "update" not in text:
                return other
            continue
        for inv in script.invocations(*APT):
            if inv.subcommand == "update":
                break
            if inv.subcommand in APT_LIST_USERS:
                return other
    return None


# ----------------------------------------------------------------------------------------------
# Version pinning (lint only)
# ----------------------------------------------------------------------------------------------


class PinRule(PackageRule):
    """A lint rule listing the packages an install names without a version."""

    programs: ClassVar[tuple[str, ...]]
    actions: ClassVar[tuple[str, ...]]
    example: ClassVar[str]

    def unpinned(self, inv: Invocation, operands: Sequence[Word]) -> list[str]:
        raise NotImplementedError

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            for inv in script.invocations(*self.programs):
                word = action_word(inv, self.actions)
                if word is None:
                    continue
                operands = [w for w in inv.operands if w.start > word.start and w.value is not None]
                loose = self.unpinned(inv, operands)
                if loose:
                    names = ", ".join(f"`{name}`" for name in loose)
                    message = (
                        f"`{command_text(inv, word)}` installs {names} without a version, so a rebuild can get "
                        f"a different one; pin it ({self.example})"
                    )
                    yield self.command_finding(ctx, script, inv.command, message, None)


class CacheOptionRule(PackageRule):
    """A rule for a package manager whose cache an option switches off (``--no-cache-dir``).

    Per RUN of a stage in the final image: the invocations that would fill the cache (and do not
    switch it off, and are not followed by a clean-up in the same RUN) each get the option after
    their action word. With ``--cache-mounts``, the RUN gets one cache mount instead, when the
    cache's place is known and a mount there hides nothing the image needs.
    """

    programs: ClassVar[tuple[str, ...]]
    actions: ClassVar[tuple[str, ...]]
    option: ClassVar[str]
    cache_paths: ClassVar[tuple[str, ...]]  # for recognising existing mounts
    env_switch: ClassVar[str]  # the environment variable that switches the cache off
    env_dirs: ClassVar[tuple[str, ...]]  # variables that move the cache (no mount then)
    mount_target: ClassVar[str]  # the cache of root, for --cache-mounts

    def switched_off(self, inv: Invocation) -> bool:
        """Whether the command's own options keep it from caching."""
        raise NotImplementedError

    def is_cleanup(self, inv: Invocation) -> bool:
        raise NotImplementedError

    def message(self, action: str) -> str:
        raise NotImplementedError

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            ins = script.ins
            if not in_final_image(ctx, ins) or has_cache_mount(ins, *self.cache_paths):
                continue
            if env_set(ctx, ins, self.env_switch):
                continue
            variables = ctx.model.scope_of(ins).variables()
            if any(variables.get(v) and has_cache_mount(ins, variables[v]) for v in self.env_dirs):
                continue
            users = []
            for inv in script.invocations(*self.programs):
                word = action_word(inv, self.actions)
                if word is None or self.switched_off(inv):
                    continue
                if command_env(inv, self.env_switch) or script.exported_before(self.env_switch, inv.command.start):
                    continue
                if later_in_script(script, inv.command.end, self.is_cleanup):
                    continue
                users.append((inv, word))
            if not users:
                continue
            mount = self._mount(ctx, script) if cache_mounts_wanted(ctx) else None
            if mount is not None:
                inv, word = users[0]
                message = f"{self.message(command_text(inv, word))}; keep it in a BuildKit cache mount instead"
                yield self.command_finding(ctx, script, inv.command, message, mount)
                continue
            for inv, word in users:
                action = command_text(inv, word)
                edit = script.insert_after(word, f" {self.option}")
                fix = self.fix_or_none(f"add `{self.option}` to `{action}`", [edit])
                yield self.command_finding(
                    ctx, script, inv.command, f"{self.message(action)}; add `{self.option}`", fix
                )

    def _mount(self, ctx: Context, script: RunScript) -> Fix | None:
        ins = script.ins
        if not runs_as_root(ctx, ins) or any(env_set(ctx, ins, v) for v in (*self.env_dirs, "XDG_CACHE_HOME")):
            return None
        if mount_conflict(ctx, script, [self.mount_target]) is not None:
            return None
        edits = add_mounts(ctx, script, [cache_mount_flag(self.mount_target)])
        return self.fix_or_none(f"keep the cache in a BuildKit cache mount at {self.mount_target}", edits)


def tool_cache_dir(ctx: Context, ins: Instruction, variable: str, name: str) -> str | None:
    """Where a Python tool keeps its cache for ``ins``: ``$VARIABLE``, else ``$XDG_CACHE_HOME/name``,
    else ``/root/.cache/name`` for root; None when the Dockerfile does not show it."""
    variables = ctx.model.scope_of(ins).variables()
    if variable in variables:
        return variables[variable]
    if env_set(ctx, ins, variable):
        return None
    if "XDG_CACHE_HOME" in variables:
        return posixpath.join(variables["XDG_CACHE_HOME"], name)
    if env_set(ctx, ins, "XDG_CACHE_HOME") or not runs_as_root(ctx, ins):
        return None
    return f"/root/.cache/{name}"


# ----------------------------------------------------------------------------------------------
# yum, dnf, microdnf
# ----------------------------------------------------------------------------------------------

RPM_FILLERS = frozenset({"install", "groupinstall", "localinstall", "update", "upgrade", "reinstall", "downgrade",
                         "distro-sync", "makecache", "group", "module", "in", "up", "upgrade-minimal"})  # fmt: skip


RPM_CACHES = {"yum": "/var/cache/yum", "dnf": "/var/cache/dnf", "dnf5": "/var/cache/libdnf5",
              "microdnf": "/var/cache/yum", "tdnf": "/var/cache/tdnf"}  # fmt: skip


class RpmYesRule(OptionRule):
    """``-y`` for yum and dnf commands that would stop at their confirmation prompt."""

    option = "-y"

    def skip_run(self, ctx: Context, script: RunScript) -> bool:
        return configured_before(ctx, script.ins, "assumeyes", "yum.conf", "dnf.conf")

    def satisfied(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        """Whether the command will not ask: ``-y``, ``--assumeyes``, ``--assumeno``,
        ``--setopt=assumeyes=...``, or input from a pipe."""
        if inv.has_option("-y", "--assumeyes", "--assumeno"):
            return True
        if any("assumeyes" in v for v in option_values(inv, "--setopt")):
            return True
        return piped_input(inv)

    def message(self, inv: Invocation, action: str) -> str:
        return f"`{action}` without `-y` asks for confirmation, and a build has no one to answer: it fails"


class RpmCleanRule(CleanupRule):
    """``yum clean all`` / ``dnf clean all`` after installs, with the program the RUN uses."""

    def fills_cache(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.subcommand in RPM_FILLERS

    def is_cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.program in self.programs and inv.subcommand == "clean":
            return any(w.value in ("all", "packages", "metadata", "dbcache") for w in inv.operands)
        return super().is_cleanup(ctx, script, inv)

    def cleanup(self, ctx: Context, script: RunScript, inv: Invocation) -> str | None:
        programs = dict.fromkeys(
            i.program for i in script.invocations(*self.programs) if self.fills_cache(ctx, script, i)
        )
        return " && ".join(f"{program} clean all" for program in programs)

    def message(self, ctx: Context, script: RunScript, inv: Invocation) -> str:
        folder = RPM_CACHES.get(inv.program, self.cache_paths[0])
        return (
            f"`{command_text(inv, inv.subcommand_word)}` leaves repository metadata in {folder}, "
            f"which ends up in the image; end the RUN with `{inv.program} clean all`"
        )
