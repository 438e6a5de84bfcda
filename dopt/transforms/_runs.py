"""Machinery shared by the RUN rules (DO200-DO209, DO250-DO259).

* :func:`run_scripts`: the shell scripts a RUN runs, with their positions in the Dockerfile.
* :func:`shell_info`: what the ``SHELL`` in force is (a POSIX shell? started with ``-e``?).
* :func:`run_chains`: runs of consecutive RUN instructions that could become one.
* :func:`plan_merge`: the edit that joins a chain into one RUN, or why two RUNs must stay apart.
* :func:`relation`: whether a RUN only cleans up after, or only prepares, the RUN next to it.

Merging is only done when the joined script provably runs the same commands with the same
outcome as the separate RUNs, each of which starts a fresh shell and runs only if the one before
succeeded. The join is ``first && second``; a script that changes the shell's state (``cd``,
variables, functions, ``exit``, ``exec``) runs in a subshell ``( first ) && second``, and a
second script that is not a plain ``&&`` chain runs as ``first && ( second )``. ``set -e``
is the exception: POSIX shells ignore it inside ``( ... ) && next``, so a script that starts with
``set -e...`` is joined with ``;``, and only to a script those options cannot change (see
:func:`_semicolon_join`); under a SHELL started with ``-e``, no subshell is used at all.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dopt.optimizer.rules import Context, Edit
from dopt.optimizer.shell import (
    Command,
    HazardKind,
    ListItem,
    MergeHazard,
    ShellScript,
    analyze_merge,
    invocation_of,
)
from dopt.optimizer.shell import parse_shell as _parse_shell
from dopt.optimizer.syntax import Document, Instruction, Trivia


@functools.lru_cache(maxsize=4096)
def parse_shell(script: str) -> ShellScript:
    """:func:`dopt.optimizer.shell.parse_shell`, remembered: the RUN rules ask about the same
    scripts many times while the engine fixes a file (the result is immutable)."""
    return _parse_shell(script)


# ----------------------------------------------------------------------------------------------
# The shell in force
# ----------------------------------------------------------------------------------------------

_POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"})


@dataclass(frozen=True)
class ShellInfo:
    """What the ``SHELL`` in force means for a RUN's script."""

    posix: bool  # a POSIX shell run as ``shell [options] -c script``: `&&`, `( )`, `set` mean what POSIX says
    errexit: bool  # started with ``-e`` or ``-o errexit``
    pipefail: bool  # started with ``-o pipefail``


def shell_info(shell: Sequence[str]) -> ShellInfo:
    """Read a SHELL command line such as ``["/bin/bash", "-euxo", "pipefail", "-c"]``."""
    if not shell or shell[0].rsplit("/", 1)[-1] not in _POSIX_SHELLS:
        return ShellInfo(False, False, False)
    errexit = pipefail = command = False
    words = list(shell[1:])
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):  # --login, --norc, --posix ...
            index += 1
            continue
        if len(word) < 2 or word[0] not in "-+":
            return ShellInfo(False, False, False)  # an operand before the script: not the usual form
        on = word[0] == "-"
        letters, has_o, attached = word[1:].partition("o")
        if "e" in letters:
            errexit = on
        if has_o and not attached and index + 1 < len(words):
            index += 1
            attached = words[index]
        if attached == "errexit":
            errexit = on
        elif attached == "pipefail":
            pipefail = on
        command = "c" in letters
        index += 1
    return ShellInfo(command, errexit, pipefail)


# ----------------------------------------------------------------------------------------------
# The scripts inside a RUN
# ----------------------------------------------------------------------------------------------

_HEREDOC_ONLY = re.compile(r"<<-?[\t ]*(?:'[^']*'|\"[^\"]*\"|[^\s<>|&;'\"]+)\Z")
_SHELL_SHEBANG = re.compile(r"#![\t ]*/\S*/(?:env[\t ]+)?(?:ba|da|k|mk|z)?sh\b")


@dataclass(frozen=True)
class RunScript:
    """A shell script a RUN runs, and where each of its characters stands in the Dockerfile.

    ``owner`` is the instruction in the file (an ``ONBUILD`` for ``ONBUILD RUN``), ``ins`` the RUN.
    """

    owner: Instruction
    ins: Instruction
    shell: ShellScript
    # (offset in the script, length, offset in the source; None: in the instruction's arguments)
    pieces: tuple[tuple[int, int, int | None], ...] = field(repr=False)

    def source_offset(self, offset: int) -> int:
        for start, length, source in reversed(self.pieces):
            if offset >= start:
                inside = min(offset - start, length)
                if source is None:
                    return self.ins.source_offset(self.ins.args_start + inside)
                return source + inside
        return self.ins.source_offset(self.ins.args_start)

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Source range of ``script[start:end]``."""
        if end <= start:
            position = self.source_offset(start)
            return position, position
        return self.source_offset(start), self.source_offset(end - 1) + 1


def run_scripts(ins: Instruction) -> Iterator[RunScript]:
    """The shell scripts of a shell-form RUN (or ONBUILD RUN), heredoc bodies included.

    ``RUN <<EOF`` runs the heredoc's body as the script (unless a shebang names another
    interpreter); ``RUN cmd <<EOF`` runs the line with its heredocs appended, as BuildKit does.
    """
    node = ins.sub if ins.sub is not None else ins
    if node.name != "RUN" or node.json or not node.args:
        return
    if not ins.heredocs:
        yield RunScript(ins, node, parse_shell(node.args), ((0, len(node.args), None),))
        return
    if ins.sub is not None:
        return
    if len(ins.heredocs) == 1 and _HEREDOC_ONLY.match(node.args):
        heredoc = ins.heredocs[0]
        body = heredoc.content
        if body.startswith("#!") and not _SHELL_SHEBANG.match(body):
            return
        yield RunScript(ins, node, parse_shell(body), ((0, len(body), heredoc.body_start),))
        return
    text = node.args + "\n"
    pieces: list[tuple[int, int, int | None]] = [(0, len(node.args), None)]
    for heredoc in ins.heredocs:
        pieces.append((len(text), len(heredoc.content), heredoc.body_start))
        text += heredoc.content + heredoc.name + "\n"
    yield RunScript(ins, node, parse_shell(text), tuple(pieces))


# ----------------------------------------------------------------------------------------------
# Chains of consecutive RUN instructions
# ----------------------------------------------------------------------------------------------

_SUPPRESSION = re.compile(r"#\s*(dopt|hadolint)\s*:?\s*ignore", re.IGNORECASE)


@dataclass(frozen=True)
class Chain:
    """Consecutive RUN instructions of one stage with only comments and blank lines between them,
    the same flags and the same POSIX shell; ``comments[i]`` are the comment lines between
    ``runs[i]`` and ``runs[i + 1]`` as written."""

    runs: tuple[Instruction, ...]
    comments: tuple[tuple[str, ...], ...]
    shell: ShellInfo


def own_layer_reason(ins: Instruction) -> str | None:
    """Why a RUN can never be merged with a neighbour; None when it could be."""
    if ins.name != "RUN":
        return "it is not a RUN"
    if ins.json:
        return "it is in exec form (a JSON array), which runs without a shell"
    if ins.heredocs:
        return "it runs a here-document"
    if not ins.args:
        return "it has no command"
    for flag in ins.flags:
        if flag.name != "mount":
            continue
        fields = [part.strip() for part in (flag.value or "").split(",")]
        kind = next((f.split("=", 1)[1] for f in fields if f.lower().startswith("type=")), "bind").lower()
        if kind == "tmpfs":
            return "its tmpfs mount would no longer start empty for the second part"
        writable = any(f.lower() in ("rw", "readwrite", "rw=true", "readwrite=true", "ro=false") for f in fields)
        if kind == "bind" and (writable or any(f.lower() == "readonly=false" for f in fields)):
            return "writes to its writable bind mount would no longer be discarded between the parts"
    return None


def pair_break_reason(ctx: Context, first: Instruction, second: Instruction) -> str | None:
    """Why two RUNs that follow each other (only comments between) cannot be one chain; None if they can."""
    between = [n for n in ctx.document.nodes if first.end <= n.start and n.end <= second.start]
    return _break_reason(ctx, first, second, between)


def _break_reason(
    ctx: Context, first: Instruction, second: Instruction, between: Sequence[Instruction | Trivia]
) -> str | None:
    for ins in (first, second):
        reason = own_layer_reason(ins)
        if reason is not None:
            return f"the RUN at line {ins.line} cannot be merged: {reason}"
    if tuple(f.text for f in first.flags) != tuple(f.text for f in second.flags):
        return "their flags differ"
    if not shell_info(ctx.model.scope_of(first).shell).posix:
        return "the SHELL in force is not a POSIX shell dopt understands"
    source = ctx.document.source
    for node in between:
        if not isinstance(node, Trivia):
            return "another instruction stands between them"
        if node.kind == "comment" and _SUPPRESSION.match(source[node.start : node.end].strip()):
            return "a suppression comment applies to the second RUN alone"
    return None


def run_chains(ctx: Context) -> tuple[Chain, ...]:
    """Every chain of two or more RUNs that :func:`plan_merge` may join, in file order."""
    return ctx.shared(_run_chains)


def _run_chains(ctx: Context) -> tuple[Chain, ...]:
    doc = ctx.document
    chains: list[Chain] = []
    runs: list[Instruction] = []
    comments: list[tuple[str, ...]] = []

    def close() -> None:
        if len(runs) >= 2:
            shell = shell_info(ctx.model.scope_of(runs[0]).shell)
            chains.append(Chain(tuple(runs), tuple(comments), shell))
        runs.clear()
        comments.clear()

    previous: Instruction | None = None
    between: list[Trivia] = []
    for node in doc.nodes:
        if isinstance(node, Trivia):
            between.append(node)
            continue
        ins = node
        joins = bool(runs) and runs[-1] is previous
        if joins and previous is not None and _break_reason(ctx, previous, ins, between) is None:
            comments.append(tuple(doc.source[n.start : n.end] for n in between if n.kind == "comment"))
            runs.append(ins)
        else:
            close()
            if own_layer_reason(ins) is None and shell_info(ctx.model.scope_of(ins).shell).posix:
                runs.append(ins)
        previous = ins
        between = []
    close()
    return tuple(chains)


# ----------------------------------------------------------------------------------------------
# Merging a chain
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Merge:
    """One RUN replacing ``runs``; ``subshells`` names the RUNs put in ``( ... )`` and why."""

    runs: tuple[Instruction, ...]
    edit: Edit
    # (RUN, "state" or "list", detail): a RUN in ``( ... )`` so that its state changes (detail: the
    # command) stay its own, or so that its top-level `;`/`||`/`&` list (detail: the operator) stays whole
    subshells: tuple[tuple[Instruction, str, str], ...]

    @property
    def start(self) -> int:
        return self.runs[0].keyword_start

    @property
    def end(self) -> int:
        return self.runs[-1].args_end


@dataclass(frozen=True)
class Refusal:
    """Two neighbouring RUNs that must stay apart, and why."""

    first: Instruction
    second: Instruction
    reason: str


@dataclass
class _Piece:
    """The part of one RUN's script that goes into the merged script (offsets in ``ins.args``)."""

    ins: Instruction
    start: int
    end: int
    wrapped: bool = False
    why: tuple[str, str] = ("", "")
    joiner: str = "&&"  # how it is joined to the piece before it: "&&" or ";"

    @property
    def text(self) -> str:
        return self.ins.args[self.start : self.end]


@dataclass(frozen=True)
class _Join:
    joiner: str
    cut_last: int | None  # new end of the last piece (a trailing `;` dropped)
    wrap_last: tuple[str, str] | None  # why the last piece goes into a subshell (see Merge.subshells)
    next_start: int  # where the next piece starts in its RUN's arguments (after a shared `set -e`)
    wrap_next: tuple[str, str] | None
    cut_next: int | None = None  # end of the next piece without its trailing `;`


def plan_merge(doc: Document, chain: Chain) -> tuple[list[Merge], list[Refusal]]:
    """Join the chain's RUNs wherever that keeps the meaning; the merges and the refusals between."""
    merges: list[Merge] = []
    refusals: list[Refusal] = []
    pieces = [_Piece(chain.runs[0], 0, len(chain.runs[0].args))]
    comments: list[tuple[str, ...]] = []
    for index, ins in enumerate(chain.runs[1:], start=1):
        decision = _decide(doc, pieces, ins, chain.shell)
        if isinstance(decision, str):
            refusals.append(Refusal(pieces[-1].ins, ins, decision))
            if len(pieces) > 1:
                merges.append(_render(doc, pieces, comments))
            pieces, comments = [_Piece(ins, 0, len(ins.args))], []
            continue
        last = pieces[-1]
        if decision.cut_last is not None:
            last.end = decision.cut_last
        if decision.wrap_last is not None:
            last.wrapped, last.why = True, decision.wrap_last
        end = decision.cut_next if decision.cut_next is not None else len(ins.args)
        piece = _Piece(ins, decision.next_start, end, joiner=decision.joiner)
        if decision.wrap_next is not None:
            piece.wrapped, piece.why = True, decision.wrap_next
        pieces.append(piece)
        comments.append(chain.comments[index - 1])
    if len(pieces) > 1:
        merges.append(_render(doc, pieces, comments))
    return merges, refusals


def _script_text(pieces: Sequence[_Piece]) -> tuple[str, int]:
    """The merged script so far (its shell meaning), and where the last piece's own text starts."""
    text = ""
    last_start = 0
    for index, piece in enumerate(pieces):
        if index:
            text += " && " if piece.joiner == "&&" else "; "
        if piece.wrapped:
            text += "( "
        last_start = len(text)
        text += piece.text
        if piece.wrapped:
            text += " )"
    return text, last_start


def _odd_backslashes(text: str) -> bool:
    """Whether ``text`` ends with an escaping backslash, which would escape whatever is appended."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def _trailing_comment(script: ShellScript) -> tuple[int, int] | None:
    if not script.items:
        return None
    end = script.items[-1].end
    return next(((s, e) for s, e in script.comments if s >= end), None)


def _errexit_prologue(script: ShellScript, hazards: Sequence[MergeHazard]) -> Command | None:
    """The script's first command when it is a plain ``set`` that turns on errexit (``set -eux;``)."""
    if not script.items:
        return None
    item = script.items[0]
    if item.kind != "command" or len(item.commands) != 1 or item.op_after not in (";", None):
        return None
    command = item.commands[0]
    if command.assignments or command.redirects or any(w.value is None for w in command.words):
        return None
    if not command.words or command.words[0].value != "set":
        return None
    if not any(h.kind is HazardKind.ERREXIT and h.start == command.start for h in hazards):
        return None
    return command


def _stops_on_failure(item: ListItem) -> bool:
    """Under ``set -e``, a failure of this last top-level item ends the shell (it is not an and-or
    list, negated, or a compound command whose inner failures ``-e`` may ignore)."""
    return item.op_before in (None, ";", "\n") and not item.negated and item.kind in ("command", "pipeline")


def _tail(script: ShellScript) -> list[ListItem]:
    """The items of the script's last and-or list: the commands ``&& next`` would follow."""
    items = list(script.items)
    tail = [items.pop()]
    while items and tail[0].op_before in ("&&", "||"):
        tail.insert(0, items.pop())
    return tail


def _errexit_in_tail(script: ShellScript) -> str | None:
    """A ``set`` that may turn on errexit nested in the last and-or list (in a subshell, pipeline,
    substitution or function body), where POSIX shells ignore -e once ``&& next`` follows."""
    start = _tail(script)[0].start
    for command in script.commands():
        if command.start < start or not command.words or command.words[0].value != "set":
            continue
        text = script.text[command.start : command.end]
        if any(h.kind is HazardKind.ERREXIT for h in analyze_merge(parse_shell(text))):
            return text
    return None


def _last_and_or_is_simple(script: ShellScript) -> bool:
    """Whether the last and-or list holds only simple commands, so that ``-e`` treats its parts the
    same whether or not ``&& next`` follows."""
    tail = _tail(script)
    start, end = tail[0].start, tail[-1].end
    if any(start <= compound.start < end for compound in script.compounds):
        return False
    return not any(c.context.in_substitution for item in tail for c in item.commands)


def _decide(doc: Document, pieces: list[_Piece], ins: Instruction, shell: ShellInfo) -> _Join | str:
    """How to join ``ins`` to the merged script so far, or why it must not be."""
    last = pieces[-1]
    text, last_start = _script_text(pieces)
    first = parse_shell(text)
    second = parse_shell(ins.args)
    hazards = analyze_merge(first, second)
    where = f"the RUN at line {last.ins.line}"

    def say(hazard: MergeHazard) -> str:
        """A hazard's reason naming the RUN it is about."""
        if hazard.in_second:
            return hazard.reason.replace("the second script", f"the RUN at line {ins.line}", 1)
        if hazard.reason.startswith("the script "):
            return f"{where} {hazard.reason.removeprefix('the script ')}"
        return f"in {where}, {hazard.reason}" if hazard.reason.startswith("`") else f"{where} {hazard.reason}"

    for hazard in hazards:
        if hazard.kind in (HazardKind.PARSE_ERROR, HazardKind.EMPTY, HazardKind.BACKGROUND):
            return say(hazard)
    comment = _trailing_comment(first)
    if comment is not None:
        return (
            f"{where} ends with the shell comment `{text[comment[0] : comment[1]]}`, which would "
            "swallow the commands joined after it"
        )
    if _odd_backslashes(text):
        return f"{where} ends with a backslash, which would escape the text joined after it"
    nested = _errexit_in_tail(first)
    if nested is not None:
        return (
            f"{where} runs `{nested}` inside its last command list, where the shell would ignore it once `&&` follows"
        )
    first_hazards = [h for h in hazards if not h.in_second]
    second_hazards = [h for h in hazards if h.in_second]
    last_item = first.items[-1]
    cut: int | None = None
    if last_item.op_after == ";" and not last.wrapped:
        cut = _cut_trailing_semicolon(doc, last, last_item.end - last_start)
    trailing = [h for h in first_hazards if h.kind is HazardKind.TRAILING_TEXT and h.start >= last_item.end]
    others = [h for h in first_hazards if h not in trailing]
    prologue = _errexit_prologue(first, first_hazards)
    if shell.errexit or prologue is not None:
        join = _semicolon_join(first, second, ins, prologue, others, cut, shell)
        if join is not None:
            return join
        if prologue is not None:
            shown = text[prologue.start : prologue.end]
            blocking = [h for h in others if h.start != prologue.start]
            if blocking:
                return (
                    f"{where} turns on errexit with `{shown}`, so it cannot go in a subshell (the shell would "
                    f"ignore -e there), and {blocking[0].reason}"
                )
            return (
                f"{where} turns on errexit with `{shown}`, which would also apply to the next RUN, and in a "
                f"subshell joined with `&&` the shell ignores it; only a RUN that starts with `{shown};`, or "
                "a plain `&&` chain of simple commands that these options do not change, can be joined to it"
            )
    errexit = next((h for h in others if h.kind is HazardKind.ERREXIT), None)
    if errexit is not None:
        return say(errexit)
    if shell.errexit:
        blocking = others + second_hazards + (trailing if cut is None else [])
        if blocking:
            return (
                f"{say(blocking[0])}; the SHELL runs with -e, which a subshell joined with `&&` "
                "would ignore, so it cannot be wrapped in one"
            )
        if not _last_and_or_is_simple(first):
            return (
                f"{where} ends with a compound command, inside which the SHELL's -e would be ignored once "
                "`&&` follows it"
            )
        return _Join("&&", cut, None, 0, None)
    unfixable = next((h for h in others + second_hazards if not h.fixed_by_subshell), None)
    if unfixable is not None:
        return say(unfixable)
    wrap_last: tuple[str, str] | None = None
    if others:
        if any(h.start < last_start or h.end > last_start + len(last.text) for h in others):
            return say(others[0])  # cannot happen: earlier pieces were made safe when they were joined
        snippet = text[others[0].start : others[0].end]
        wrap_last = ("state", snippet if len(snippet) <= 40 else snippet[:37].rstrip() + "...")
    elif trailing and cut is None:
        wrap_last = ("list", ";")
    wrap_next: tuple[str, str] | None = None
    cut_next: int | None = None
    if second_hazards:
        if _trailing_comment(second) is not None:
            return f"{say(second_hazards[0])}, and it ends with a shell comment, so it cannot go in a subshell"
        if _odd_backslashes(ins.args):
            return f"{say(second_hazards[0])}, and it ends with a backslash, so it cannot go in a subshell"
        operator = next(i.op_after for i in second.items if i.op_after in (";", "||", "&", "\n"))
        wrap_next = ("list", operator)
        if second.items[-1].op_after == ";":
            cut_next = _cut_trailing_semicolon(doc, _Piece(ins, 0, len(ins.args)), second.items[-1].end)
    return _Join("&&", cut, wrap_last, 0, wrap_next, cut_next)


def _semicolon_join(
    first: ShellScript,
    second: ShellScript,
    ins: Instruction,
    prologue: Command | None,
    others: Sequence[MergeHazard],
    cut: int | None,
    shell: ShellInfo,
) -> _Join | None:
    """``first; second`` under errexit: the shell exits wherever either RUN would have stopped.

    It holds when errexit is on at the end of ``first`` (from the SHELL, or from a leading
    ``set -e...``), ``first`` changes nothing else in the shell, and its last item is a simple
    command or pipeline, whose failure ends the shell as it ended the first RUN. The options of
    a leading ``set`` must then mean nothing to ``second``: either it starts with the very same
    ``set`` command (which is dropped), or it is a plain ``&&`` chain of simple commands, whose
    outcome ``-e`` does not change, without any ``$`` when the options include ``-u``
    (``-x`` and ``-v`` only write to the build log).
    """
    if first.items[-1].op_after == ";" and cut is None:
        return None
    if any(prologue is None or h.start != prologue.start for h in others):
        return None
    if not _stops_on_failure(first.items[-1]):
        return None
    start = 0
    if prologue is not None:
        if _repeats_prologue(second, prologue):
            start = second.items[1].start
        elif not _unaffected_by_options(second, _options(prologue)):
            return None
    elif not shell.errexit:
        return None
    return _Join(";", cut, None, start, None)


def _repeats_prologue(script: ShellScript, prologue: Command) -> bool:
    """Whether ``script`` starts with the same ``set`` command, followed by more commands."""
    if len(script.items) < 2 or script.items[0].op_after != ";":
        return False
    opening = script.items[0].commands
    if len(opening) != 1 or opening[0].assignments or opening[0].redirects:
        return False
    return [w.value for w in opening[0].words] == [w.value for w in prologue.words]


_OPTION_LETTERS = {"e": "errexit", "u": "nounset", "x": "xtrace", "v": "verbose"}
_KNOWN_OPTIONS = frozenset({*_OPTION_LETTERS.values(), "pipefail"})


def _options(command: Command) -> set[str] | None:
    """The options a ``set`` command turns on (``-eux``, ``-euo pipefail``), None for any other use."""
    names: set[str] = set()
    words = [w.value or "" for w in command.words[1:]]
    index = 0
    while index < len(words):
        word = words[index]
        letters, has_o, rest = word[1:].partition("o")
        if not word.startswith("-") or word == "-" or rest or any(c not in _OPTION_LETTERS for c in letters):
            return None
        names.update(_OPTION_LETTERS[c] for c in letters)
        if has_o:
            index += 1
            if index == len(words):
                return None
            names.add(words[index])
        index += 1
    return names if names <= _KNOWN_OPTIONS else None


def _unaffected_by_options(script: ShellScript, options: set[str] | None) -> bool:
    """Whether running ``script`` with these options on gives the same outcome as without."""
    if options is None or not script.is_and_chain or script.compounds:
        return False
    if any(item.kind not in ("command", "pipeline", "assignment") for item in script.items):
        return False
    if any(c.context.in_substitution for c in script.commands()):
        return False
    if "pipefail" in options and any(c.context.in_pipeline for c in script.commands()):
        return False
    return "nounset" not in options or "$" not in script.text


def _cut_trailing_semicolon(doc: Document, piece: _Piece, item_end: int) -> int | None:
    """New end of ``piece`` without the `;` after its last item, when that `;` is on the same line."""
    ins = piece.ins
    end = piece.start + item_end
    cut_from = ins.source_range(ins.args_start + piece.start, ins.args_start + end)[1]
    cut_to = ins.source_range(ins.args_start + piece.start, ins.args_start + piece.end)[1]
    return end if "\n" not in doc.source[cut_from:cut_to] else None


def _indent(doc: Document, ins: Instruction) -> str:
    """Indentation for the joined lines: that of the first RUN's continuation lines, else four spaces."""
    source = doc.source
    first_line_end = source.find("\n", ins.start)
    own = source[ins.start : ins.keyword_start]
    position = first_line_end + 1
    while 0 < position < ins.end:
        line_end = source.find("\n", position)
        line_end = ins.end if line_end == -1 else line_end
        line = source[position:line_end].rstrip("\r")
        stripped = line.lstrip(" \t")
        if stripped and not stripped.startswith("#"):
            indentation = line[: len(line) - len(stripped)]
            if indentation:
                return indentation
            break
        position = line_end + 1
    return own + "    "


def _render(doc: Document, pieces: Sequence[_Piece], comments: Sequence[tuple[str, ...]]) -> Merge:
    source = doc.source
    first = pieces[0].ins
    newline = doc.newline_at(first.keyword_start)
    indent = _indent(doc, first)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        ins = piece.ins
        start = ins.source_offset(ins.args_start + piece.start)
        end = ins.source_range(ins.args_start + piece.start, ins.args_start + piece.end)[1]
        if index:
            out.append((";" if piece.joiner == ";" else "") + " " + doc.escape + newline)
            out.extend(comments[index - 1])
            out.extend(source[s:e] for s, e in ins.comment_lines if s < start)
            out.append(indent + ("&& " if piece.joiner == "&&" else ""))
        out.append(("( " if piece.wrapped else "") + source[start:end] + (" )" if piece.wrapped else ""))
    edit = Edit(first.source_offset(first.args_start), pieces[-1].ins.args_end, "".join(out))
    return Merge(
        tuple(p.ins for p in pieces),
        edit,
        tuple((p.ins, *p.why) for p in pieces if p.wrapped),
    )


# ----------------------------------------------------------------------------------------------
# RUNs that belong together: clean-up after an install, `apt-get update` before one
# ----------------------------------------------------------------------------------------------

# The package manager (or tool family) behind a program.
_MANAGERS = {
    "apt-get": "apt", "apt": "apt", "aptitude": "apt", "dpkg": "apt",
    "yum": "rpm", "dnf": "rpm", "microdnf": "rpm", "tdnf": "rpm", "rpm": "rpm",
    "apk": "apk", "zypper": "zypper",
    "pip": "pip", "npm": "npm", "yarn": "yarn", "pnpm": "pnpm",
    "conda": "conda", "mamba": "conda", "micromamba": "conda",
    "gem": "gem", "bundle": "gem", "composer": "composer",
}  # fmt: skip

# Clean-up subcommands: (manager, subcommand, first operand or None for any).
_CLEANUP_COMMANDS = frozenset(
    {
        ("apt", "clean", None), ("apt", "autoclean", None), ("apt", "autoremove", None),
        ("apt", "purge", None), ("apt", "remove", None),
        ("rpm", "clean", None), ("rpm", "remove", None), ("rpm", "erase", None), ("rpm", "autoremove", None),
        ("apk", "del", None), ("apk", "cache", "clean"), ("apk", "cache", "purge"),
        ("zypper", "clean", None), ("zypper", "cc", None), ("zypper", "remove", None), ("zypper", "rm", None),
        ("pip", "cache", "purge"), ("pip", "cache", "remove"), ("pip", "uninstall", None),
        ("npm", "cache", "clean"), ("yarn", "cache", "clean"), ("pnpm", "store", "prune"),
        ("conda", "clean", None), ("gem", "cleanup", None),
        ("composer", "clear-cache", None), ("composer", "clearcache", None), ("composer", "cc", None),
    }
)  # fmt: skip

# Directories that hold a package manager's downloads and caches; "any" is shared by several.
_CACHE_DIRECTORIES = (
    ("/var/lib/apt/lists", "apt"), ("/var/cache/apt", "apt"), ("/var/cache/debconf", "apt"),
    ("/var/log/apt", "apt"), ("/var/log/dpkg.log", "apt"),
    ("/var/cache/apk", "apk"), ("/etc/apk/cache", "apk"),
    ("/var/cache/yum", "rpm"), ("/var/cache/dnf", "rpm"), ("/var/log/dnf", "rpm"), ("/var/log/yum.log", "rpm"),
    ("/var/cache/zypp", "zypper"),
    ("/root/.cache/pip", "pip"), ("~/.cache/pip", "pip"), ("$HOME/.cache/pip", "pip"),
    ("/root/.npm", "npm"), ("~/.npm", "npm"), ("$HOME/.npm", "npm"),
    ("/usr/local/share/.cache/yarn", "yarn"), ("/root/.cache/yarn", "yarn"), ("~/.cache/yarn", "yarn"),
    ("/opt/conda/pkgs", "conda"), ("/root/.composer/cache", "composer"), ("/root/.gem", "gem"),
    ("/root/.cache", "any"), ("~/.cache", "any"), ("$HOME/.cache", "any"),
)  # fmt: skip

# Subcommands that refresh package lists, and those that download packages with them.
_UPDATE_COMMANDS = frozenset(
    {("apt", "update"), ("apk", "update"), ("rpm", "makecache"), ("zypper", "refresh"), ("zypper", "ref")}
)
_INSTALL_COMMANDS = {
    "apt": frozenset(
        {"install", "upgrade", "dist-upgrade", "full-upgrade", "build-dep", "source", "download", "satisfy"}
    ),
    "apk": frozenset({"add", "upgrade", "fix"}),
    "rpm": frozenset({"install", "update", "upgrade", "groupinstall", "reinstall", "distro-sync"}),
    "zypper": frozenset({"install", "in", "update", "up", "dist-upgrade", "dup"}),
}
_NEUTRAL = frozenset({"true", ":"})


@dataclass(frozen=True)
class Relation:
    """How a RUN relates to the RUN before it."""

    kind: str  # "cleanup": it only deletes what the previous one made; "update": the previous one only refreshed lists
    what: str  # the command that shows it, for messages


def _manager(command: Command) -> tuple[str, str | None, str | None] | None:
    """(manager, subcommand, first operand) of a package-manager command."""
    invocation = invocation_of(command)
    if invocation is None or invocation.program not in _MANAGERS:
        return None
    operand = invocation.operands[0].value if invocation.operands else None
    return _MANAGERS[invocation.program], invocation.subcommand, operand


def _removed_paths(command: Command) -> list[str] | None:
    """The paths an ``rm`` command deletes (globs as written), None when it is not such an ``rm``."""
    invocation = invocation_of(command)
    if invocation is None or invocation.program != "rm" or not invocation.operands:
        return None
    paths = []
    for word in invocation.operands:
        text = word.value if word.value is not None else word.text
        if word.value is None and (any(c in text for c in "`'\"") or "$(" in text):
            return None
        paths.append(text)
    return paths


def _cache_kind(path: str) -> str | None:
    for directory, kind in _CACHE_DIRECTORIES:
        if path == directory or path.startswith(directory + "/"):
            return kind
    return None


def _words(script: ShellScript) -> Iterator[str]:
    for command in script.commands():
        for word in (*command.assignments, *command.words):
            yield word.text
        for redirect in command.redirects:
            if redirect.target is not None:
                yield redirect.target.text


def _cleans_up_after(script: ShellScript, previous: ShellScript) -> str | None:
    """The clean-up command showing that ``script`` only deletes what ``previous`` created."""
    commands = [c for c in script.commands() if not (c.name and c.name.value in _NEUTRAL)]
    if not commands or script.problems:
        return None
    made = {m[0] for c in previous.commands() if (m := _manager(c)) is not None}
    mentioned = list(_words(previous))
    shown: str | None = None
    for command in commands:
        text = script.text[command.start : command.end]
        managed = _manager(command)
        if managed is not None:
            kind, sub, operand = managed
            if (kind, sub, None) not in _CLEANUP_COMMANDS and (kind, sub, operand) not in _CLEANUP_COMMANDS:
                return None
            if kind in made:
                shown = shown or text
            continue
        paths = _removed_paths(command)
        if paths is None:
            return None
        for path in paths:
            kind = _cache_kind(path)
            prefix = re.split(r"[*?\[]", path, maxsplit=1)[0]
            if kind is None:
                related = len(prefix.strip("/")) > 1 and any(prefix in word for word in mentioned)
            else:
                related = bool(made) if kind == "any" else kind in made
            if related:
                shown = shown or text
    return shown


def _only_updates(script: ShellScript) -> tuple[str, str] | None:
    """(manager, command) when the script does nothing but refresh package lists."""
    found: tuple[str, str] | None = None
    for command in script.commands():
        if command.name and command.name.value in _NEUTRAL:
            continue
        managed = _manager(command)
        if managed is None or (managed[0], managed[1]) not in _UPDATE_COMMANDS:
            return None
        found = found or (managed[0], script.text[command.start : command.end])
    return found


def installs(script: ShellScript, manager: str) -> bool:
    """Whether the script downloads packages with ``manager`` (which needs fresh lists)."""
    for command in script.commands():
        managed = _manager(command)
        if managed is not None and managed[0] == manager and managed[1] in _INSTALL_COMMANDS.get(manager, ()):
            return True
    return False


def relation(previous: Instruction, ins: Instruction) -> Relation | None:
    """Whether ``ins`` only cleans up after ``previous``, or ``previous`` only refreshes the package
    lists that ``ins`` installs from."""
    if previous.json or ins.json or not previous.args or not ins.args:
        return None
    before, after = parse_shell(previous.args), parse_shell(ins.args)
    cleanup = _cleans_up_after(after, before)
    if cleanup is not None:
        return Relation("cleanup", cleanup)
    update = _only_updates(before)
    if update is not None and not after.problems and installs(after, update[0]):
        return Relation("update", update[1])
    return None


def only_updates(ins: Instruction) -> tuple[str, str] | None:
    """(manager, command) when a RUN only refreshes package lists."""
    if ins.name != "RUN" or ins.json or not ins.args or ins.heredocs:
        return None
    return _only_updates(parse_shell(ins.args))


def cleans_up_after(ins: Instruction, previous: Instruction) -> str | None:
    """The command showing that RUN ``ins`` only deletes what RUN ``previous`` created."""
    if ins.json or previous.json or not ins.args or not previous.args or ins.heredocs:
        return None
    return _cleans_up_after(parse_shell(ins.args), parse_shell(previous.args))


@dataclass(frozen=True)
class Fold:
    """Two neighbouring RUNs that belong together, and the merge that joins them (or why not)."""

    first: Instruction
    second: Instruction
    relation: Relation
    merge: Merge | None
    reason: str | None


def folds(ctx: Context, kind: str) -> Iterator[Fold]:
    """Neighbouring RUNs related as ``kind`` ("cleanup" or "update") within a chain."""
    doc = ctx.document
    for chain in run_chains(ctx):
        for index, (first, second) in enumerate(itertools.pairwise(chain.runs)):
            found = relation(first, second)
            if found is None or found.kind != kind:
                continue
            pair = Chain((first, second), (chain.comments[index],), chain.shell)
            merges, refusals = plan_merge(doc, pair)
            yield Fold(first, second, found, merges[0] if merges else None, refusals[0].reason if refusals else None)


def chained(ctx: Context, first: Instruction, second: Instruction) -> bool:
    """Whether two RUNs are neighbours in one chain."""
    return any(a is first and b is second for chain in run_chains(ctx) for a, b in itertools.pairwise(chain.runs))


def stage_runs(ctx: Context, ins: Instruction) -> tuple[Instruction, ...]:
    """The RUN instructions of the stage ``ins`` belongs to, in order."""
    stage = ctx.model.stage_of(ins)
    if stage is None:
        return ()
    return tuple(i for i in stage.instructions if i.name == "RUN")
