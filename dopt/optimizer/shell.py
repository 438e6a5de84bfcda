"""The shell layer: parse a RUN instruction's script and describe it for transforms.

Transforms must find and edit commands inside shell scripts (``pip install`` behind ``sudo``, in a
subshell, in an ``if`` body ...) and decide whether two scripts can be joined with ``&&``.  Shell
is parsed with a real grammar, tree-sitter-bash, chosen by measurement (see
``benchmarks/shell_parsers.py``: it parsed 38 of 39 realistic scripts against bashlex's 29, about
seventeen times faster).  Everything here is immutable and every position is a character offset
into the script string (a Python ``str`` index, not a UTF-8 byte offset), so callers can slice and
edit ``script[start:end]`` directly.

tree-sitter-bash has a few known silent mis-parses; this module detects them and either repairs
them or reports them through :attr:`ShellScript.problems`, so a transform can refuse to touch a
script whose structure is uncertain:

* a newline after some commands (a two-stage pipeline, a line of several assignments) is not
  treated as a command separator and the next line's words are glued onto the command
  (tree-sitter-bash issues #347, #228).  The newline is re-parsed as ``;`` -- same length, same
  meaning at that position -- so offsets are unchanged; the separator is still reported as a
  newline.
* an unescaped backtick substitution nested inside another one is a sign that two backtick
  substitutions were paired wrongly (issue #278).
* anything tree-sitter marks as an error or a missing token (for example ``cat <<EOF; echo``,
  issue #346).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree

__all__ = [
    "Command",
    "Compound",
    "Context",
    "Edit",
    "Expansion",
    "HazardKind",
    "Heredoc",
    "Invocation",
    "ListItem",
    "MergeHazard",
    "ParseProblem",
    "Redirect",
    "Scope",
    "ShellScript",
    "Word",
    "analyze_merge",
    "invocation_of",
    "merge_hazards",
    "parse_shell",
]


# ----------------------------------------------------------------------------------------------
# Public data model
# ----------------------------------------------------------------------------------------------


class Scope(StrEnum):
    """A construct that encloses a command; several nest, outermost first in ``Context.scopes``."""

    SUBSHELL = "subshell"  # ( ... )
    GROUP = "group"  # { ...; }
    COMMAND_SUBSTITUTION = "command_substitution"  # $( ... ) or ` ... `
    PROCESS_SUBSTITUTION = "process_substitution"  # <( ... ) or >( ... )
    HEREDOC = "heredoc"  # a substitution inside an unquoted here-document body
    PIPELINE = "pipeline"  # a compound command that is one element of a multi-command pipeline
    IF_CONDITION = "if_condition"  # between if/elif and then
    IF_BODY = "if_body"  # a then or else branch
    LOOP_CONDITION = "loop_condition"  # between while/until and do
    LOOP_BODY = "loop_body"  # do ... done of for/select/while/until
    CASE_BRANCH = "case_branch"  # pattern) ... ;;
    FUNCTION_BODY = "function_body"  # only runs when the function is called


# Scopes whose commands cannot change the state of the shell that runs the script.
_DETACHED_SCOPES = frozenset(
    {
        Scope.SUBSHELL,
        Scope.COMMAND_SUBSTITUTION,
        Scope.PROCESS_SUBSTITUTION,
        Scope.HEREDOC,
        Scope.PIPELINE,
        Scope.FUNCTION_BODY,
    }
)


@dataclass(frozen=True, slots=True)
class Word:
    """One shell word as written.

    ``value`` is the word after quote removal when it is fully static -- no parameter expansion,
    substitution, arithmetic, globbing, brace expansion or leading tilde -- and ``None`` otherwise,
    so a transform never mistakes ``"$PKG"`` or ``*.whl`` for a literal.
    """

    text: str
    start: int
    end: int
    value: str | None


@dataclass(frozen=True, slots=True)
class Expansion:
    """A parameter expansion, ``$NAME`` or ``${NAME...}``: where a script reads a variable."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A here-document: ``<<DELIM`` on the command line, then a body, then the delimiter line.

    ``body_start`` is the first character of the body's first line and ``body_end`` the first
    character of the delimiter line; ``end`` is the end of the delimiter line.  Nothing in
    ``body_start .. end`` may be edited as shell code.
    """

    start: int
    delimiter: str
    quoted: bool
    strip_tabs: bool
    body_start: int
    body_end: int
    end: int


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirection such as ``2>&1``, ``> /dev/null``, ``<<< "x"`` or ``<<EOF``.

    ``start``/``end`` cover only the text on the command line (a here-document body lies elsewhere
    and is described by ``heredoc``).
    """

    start: int
    end: int
    operator: str
    fd: str | None
    target: Word | None
    heredoc: Heredoc | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """Where a command or compound command sits in the script.

    ``op_before``/``op_after`` are the operators joining its pipeline to the previous/next item of
    the innermost statement list (``&&``, ``||``, ``;``, ``&``, newline ``\\n``, ``;;`` for a case
    branch), ``None`` at the start/end of that list.  Every element of one pipeline shares them.
    ``background`` is true when the command runs asynchronously, because its own list or an
    enclosing one ends with ``&``.  ``item`` is the index of the top-level item that contains it.
    """

    scopes: tuple[Scope, ...]
    pipeline_index: int
    pipeline_length: int
    negated: bool
    background: bool
    op_before: str | None
    op_after: str | None
    item: int

    def inside(self, *scopes: Scope) -> bool:
        """Whether any of ``scopes`` encloses this position."""
        return any(scope in self.scopes for scope in scopes)

    @property
    def in_subshell(self) -> bool:
        """Inside ``( ... )``."""
        return Scope.SUBSHELL in self.scopes

    @property
    def in_substitution(self) -> bool:
        """Inside ``$( )``, backticks, ``<( )`` or ``>( )``."""
        return self.inside(Scope.COMMAND_SUBSTITUTION, Scope.PROCESS_SUBSTITUTION)

    @property
    def in_heredoc(self) -> bool:
        """Inside a substitution in a here-document body."""
        return Scope.HEREDOC in self.scopes

    @property
    def in_function(self) -> bool:
        """Inside a function body, which runs only when the function is called."""
        return Scope.FUNCTION_BODY in self.scopes

    @property
    def in_condition(self) -> bool:
        """In the condition of an ``if``, ``while`` or ``until`` (where ``set -e`` does not apply)."""
        return self.inside(Scope.IF_CONDITION, Scope.LOOP_CONDITION)

    @property
    def in_pipeline(self) -> bool:
        """One of several commands joined by ``|``."""
        return self.pipeline_length > 1

    @property
    def is_last_in_pipeline(self) -> bool:
        """The last element of its pipeline, whose status is the pipeline's (trivially so when alone)."""
        return self.pipeline_index == self.pipeline_length - 1

    @property
    def runs_in_current_shell(self) -> bool:
        """Whether effects such as ``cd`` or ``export`` here persist for the rest of the script."""
        return not (self.in_pipeline or self.background or _DETACHED_SCOPES.intersection(self.scopes))


@dataclass(frozen=True, slots=True)
class Command:
    """A simple command: leading assignments, then words, with its redirections.

    ``words`` holds the command name and its arguments (not the leading ``VAR=x`` assignments,
    which are in ``assignments``).  ``export``/``local``/``unset`` lines are commands too; an
    assignment-only line is a command with no words.  ``[ ]`` and ``[[ ]]`` tests are compound
    commands, not :class:`Command`.
    """

    start: int
    end: int
    words: tuple[Word, ...]
    assignments: tuple[Word, ...]
    redirects: tuple[Redirect, ...]
    context: Context
    # What invocation_of found, once asked (False: not yet). Parses are cached, so every rule that
    # looks at a script asks the same Command objects: the answer is worked out once per command.
    _invocation: Invocation | Literal[False] | None = field(default=False, init=False, repr=False, compare=False)

    @property
    def name(self) -> Word | None:
        """The first word after the assignments, ``None`` for an assignment-only command."""
        return self.words[0] if self.words else None

    @property
    def arguments(self) -> tuple[Word, ...]:
        """The words after the command name."""
        return self.words[1:]

    def invocation(self) -> Invocation | None:
        """The effective program behind wrappers; see :func:`invocation_of`."""
        return invocation_of(self)


@dataclass(frozen=True, slots=True)
class Compound:
    """A compound command: ``if``, ``for``, ``while``, ``until``, ``select``, ``case``, ``function``,
    ``subshell``, ``group``, ``arithmetic`` (``(( ))``) or ``test`` (``[ ]``/``[[ ]]``).

    ``name`` is the function name or loop variable; ``assigns`` lists the variables the construct
    itself sets in the shell (a loop variable, targets of ``(( i = 1 ))`` or ``i++``).
    """

    kind: str
    start: int
    end: int
    context: Context
    name: str | None
    assigns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListItem:
    """One top-level pipeline of the script, with the operators around it.

    ``kind`` is ``"pipeline"`` for several commands joined by ``|``, otherwise ``"command"``,
    ``"assignment"`` or one of the :class:`Compound` kinds.  ``commands`` holds every simple
    command inside the item at any depth.
    """

    start: int
    end: int
    kind: str
    op_before: str | None
    op_after: str | None
    negated: bool
    commands: tuple[Command, ...]

    @property
    def background(self) -> bool:
        """Whether the item is started asynchronously with ``&``."""
        return self.op_after == "&"


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Why the parse of a span cannot be trusted."""

    start: int
    end: int
    message: str


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``script[start:end]`` with ``text``; ``start == end`` inserts."""

    start: int
    end: int
    text: str

    @classmethod
    def insert(cls, position: int, text: str) -> Edit:
        """An insertion at ``position``."""
        return cls(position, position, text)


@dataclass(frozen=True, slots=True)
class _Region:
    """A span edits must respect: literal text (quotes, heredoc, comment) or code nested in it.

    Containment is strict (``lo < p < hi``), and the bounds are chosen so that inserting right
    before an opening quote is fine while inserting at the end of a comment or right after a
    heredoc delimiter is not.
    """

    lo: int
    hi: int
    literal: bool


@dataclass(frozen=True, slots=True)
class ShellScript:
    """A parsed shell script.  Build it with :func:`parse_shell`."""

    text: str
    items: tuple[ListItem, ...]
    compounds: tuple[Compound, ...]
    heredocs: tuple[Heredoc, ...]
    comments: tuple[tuple[int, int], ...]
    problems: tuple[ParseProblem, ...]
    expansions: tuple[Expansion, ...]
    _commands: tuple[Command, ...] = field(repr=False)
    _regions: tuple[_Region, ...] = field(repr=False)

    @property
    def has_errors(self) -> bool:
        """Whether the grammar found errors or a known mis-parse: do not edit such a script."""
        return bool(self.problems)

    def commands(self) -> tuple[Command, ...]:
        """Every simple command at any depth, in source order."""
        return self._commands

    def invocations(self, program: str, subcommand: str | None = None) -> tuple[Invocation, ...]:
        """Every invocation of ``program`` (after wrappers; ``python -m pip`` counts as ``pip``)."""
        found = []
        for command in self._commands:
            inv = invocation_of(command)
            if inv and inv.program == program and (subcommand is None or inv.subcommand == subcommand):
                found.append(inv)
        return tuple(found)

    @property
    def operators(self) -> tuple[str, ...]:
        """The operators after each top-level item, including a trailing ``;`` or ``&``."""
        return tuple(item.op_after for item in self.items if item.op_after is not None)

    @property
    def is_and_chain(self) -> bool:
        """Whether all top-level items are joined by ``&&`` (a trailing ``;`` is allowed)."""
        return (
            bool(self.items)
            and all(item.op_after == "&&" for item in self.items[:-1])
            and (self.items[-1].op_after in (None, ";"))
        )

    @property
    def ends_in_background(self) -> bool:
        """Whether the script ends with ``&``."""
        return bool(self.items) and self.items[-1].op_after == "&"

    def is_literal(self, start: int, end: int | None = None) -> bool:
        """Whether editing ``text[start:end]`` would change quoted, heredoc or comment text.

        An edit is code-safe only when both ends are at the same nesting level and that level is
        shell code; ``$( )`` inside a string or an unquoted heredoc counts as code.
        """
        stop = start if end is None else end
        first, last = self._innermost(start), self._innermost(stop)
        return first is not last or (first is not None and first.literal)

    def apply(self, edits: Iterable[Edit]) -> str:
        """Apply non-overlapping edits and return the new script text.

        Raises ``ValueError`` when an edit is out of range, overlaps another one, or touches
        literal text (see :meth:`is_literal`); insertions at one position keep their given order.
        """
        ordered = sorted(edits, key=lambda e: (e.start, e.end))
        previous_end = 0
        for edit in ordered:
            if not 0 <= edit.start <= edit.end <= len(self.text):
                raise ValueError(f"edit {edit} is outside the script")
            if edit.start < previous_end:
                raise ValueError(f"edit {edit} overlaps another edit")
            if self.is_literal(edit.start, edit.end):
                raise ValueError(f"edit {edit} would change quoted, heredoc or comment text")
            previous_end = edit.end
        pieces, cursor = [], 0
        for edit in ordered:
            pieces += [self.text[cursor : edit.start], edit.text]
            cursor = edit.end
        pieces.append(self.text[cursor:])
        return "".join(pieces)

    def _innermost(self, position: int) -> _Region | None:
        """The smallest region strictly containing ``position``: it decides what an edit there touches."""
        best = None
        for region in self._regions:
            if region.lo < position < region.hi and (best is None or region.hi - region.lo < best.hi - best.lo):
                best = region
        return best


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


@functools.cache
def _parser() -> Parser:
    """Build the tree-sitter parser once, on first use, so importing dopt stays cheap."""
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


_REPAIR_ROUNDS = 16

_SIMPLE_TYPES = frozenset(
    {"command", "declaration_command", "unset_command", "variable_assignment", "variable_assignments"}
)
_STATEMENT_TYPES = _SIMPLE_TYPES | {
    "pipeline",
    "list",
    "negated_command",
    "redirected_statement",
    "subshell",
    "compound_statement",
    "if_statement",
    "while_statement",
    "for_statement",
    "c_style_for_statement",
    "case_statement",
    "function_definition",
    "test_command",
}
_SEPARATORS = frozenset({";", "&", "\n"})
_CASE_TERMINATORS = frozenset({";;", ";&", ";;&"})
_REDIRECT_TYPES = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_ASSIGNMENT_OPERATORS = frozenset({"=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "^=", "|=", "++", "--"})


@functools.lru_cache(maxsize=2048)
def parse_shell(script: str) -> ShellScript:
    """Parse ``script``; never raises on bad shell (see :attr:`ShellScript.problems`).

    Results are immutable and cached: every rule looks at the same RUN scripts, round after round.
    """
    data = script.encode()
    tree, repaired, unresolved = _parse_with_repairs(data)
    builder = _Builder(script, data, repaired)
    for position in unresolved:
        char = builder.char(position)
        builder.problems.append(
            ParseProblem(char, char + 1, "a line break inside one command: the parser misread the structure")
        )
    return builder.build(tree.root_node)


def _parse_with_repairs(data: bytes) -> tuple[Tree, frozenset[int], tuple[int, ...]]:
    """Parse, re-parsing with ``;`` for newlines the grammar wrongly glued into a command.

    Returns the tree, the byte positions replaced and the positions that could not be repaired.
    """
    parser = _parser()
    repaired: set[int] = set()
    current = data
    for _ in range(_REPAIR_ROUNDS):
        tree = parser.parse(current)
        fixable, unfixable = _glued_newlines(tree.root_node, current)
        if not fixable:
            return tree, frozenset(repaired), tuple(unfixable)
        patched = bytearray(current)
        for position in fixable:
            patched[position] = ord(";")
        current = bytes(patched)
        repaired.update(fixable)
    return tree, frozenset(repaired), tuple(fixable + unfixable)


def _glued_newlines(root: Node, data: bytes) -> tuple[list[int], list[int]]:
    """Byte positions of bare newlines between the parts of one simple command.

    Words of one simple command are separated by blanks and line continuations only, so a bare
    newline there means the grammar glued two lines together.  It can be re-read as ``;`` unless
    it ends a comment or starts a heredoc body.
    """
    fixable: list[int] = []
    unfixable: list[int] = []
    heredoc_spans: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "heredoc_redirect":
            heredoc_spans.append((node.start_byte, node.end_byte))
        if node.type in _SIMPLE_TYPES:
            children = node.children
            for before, after in itertools.pairwise(children):
                for offset in range(before.end_byte, after.start_byte):
                    if data[offset] == 0x0A and data[offset - 1] != 0x5C:  # "\n" not after "\\"
                        target = unfixable if before.type == "comment" else fixable
                        target.append(offset)
        stack.extend(node.children)
    inside_heredoc = [p for p in fixable if any(lo <= p < hi for lo, hi in heredoc_spans)]
    return [p for p in fixable if p not in inside_heredoc], unfixable + inside_heredoc


@dataclass
class _Element:
    """One pipeline element as the grammar nests it, with redirections found elsewhere in the tree."""

    node: Node
    redirects: list[Node] = field(default_factory=list)
    extra_words: list[Node] = field(default_factory=list)


@dataclass
class _Pipe:
    """A pipeline under construction; mutable because the grammar's pieces arrive out of order."""

    elements: list[_Element]
    negated: bool = False


@dataclass
class _AndOr:
    """Pipelines joined by ``&&``/``||`` (``ops[i]`` joins ``pipes[i]`` and ``pipes[i + 1]``)."""

    pipes: list[_Pipe]
    ops: list[str]
    terminator: str | None = None


@dataclass(frozen=True)
class _Ctx:
    """What a nested construct inherits from its surroundings."""

    scopes: tuple[Scope, ...] = ()
    background: bool = False
    item: int = -1
    in_backticks: bool = False

    def enter(self, scope: Scope) -> _Ctx:
        """The context one construct deeper."""
        return _Ctx((*self.scopes, scope), self.background, self.item, self.in_backticks)


class _Builder:
    """Turns the tree-sitter tree into the immutable model, normalising the grammar's quirks.

    The grammar nests some constructs oddly (``cat <<EOF && x`` puts ``&& x`` inside the heredoc
    redirect; ``! a | b`` negates only ``a``; redirections after ``a && b`` wrap the whole list),
    so lists and pipelines are rebuilt in source order before commands are created.
    """

    def __init__(self, text: str, data: bytes, repaired: frozenset[int]) -> None:
        self.text = text
        self.data = data
        self.repaired = repaired
        self.byte_to_char: list[int] | None = None
        if len(data) != len(text):
            self.byte_to_char = [0] * (len(data) + 1)
            position = 0
            for index, char in enumerate(text):
                width = len(char.encode())
                for k in range(width):
                    self.byte_to_char[position + k] = index
                position += width
            self.byte_to_char[position] = len(text)
        self.commands: list[Command] = []
        self.compounds: list[Compound] = []
        self.heredocs: list[Heredoc] = []
        self.comments: list[tuple[int, int]] = []
        self.expansions: list[Expansion] = []
        self.regions: list[_Region] = []
        self.problems: list[ParseProblem] = []
        self.items: list[tuple[int, int, str, str | None, str | None, bool]] = []

    # -- offsets and text ------------------------------------------------------------------------

    def char(self, byte: int) -> int:
        """The character offset of a byte offset (tree-sitter counts UTF-8 bytes)."""
        return byte if self.byte_to_char is None else self.byte_to_char[byte]

    def span(self, node: Node) -> tuple[int, int]:
        """A node's character span."""
        return self.char(node.start_byte), self.char(node.end_byte)

    def source(self, node: Node) -> str:
        """A node's text, read from the original script (repairs only touch bytes between nodes)."""
        return self.data[node.start_byte : node.end_byte].decode(errors="replace")

    def word(self, nodes: Sequence[Node]) -> Word:
        """One shell word made of adjacent grammar nodes."""
        start, end = self.char(nodes[0].start_byte), self.char(nodes[-1].end_byte)
        values = [self.value(node) for node in nodes]
        value = None if None in values else _check_expansions("".join(v[0] for v in values), values)
        return Word(self.text[start:end], start, end, value)

    # -- entry point -----------------------------------------------------------------------------

    def build(self, root: Node) -> ShellScript:
        """Walk the whole tree and freeze the result."""
        self.find_problems(root)
        self.run_list(list(root.children), _Ctx(), top_level=True)
        commands = sorted(self.commands, key=lambda c: (c.start, -c.end))
        items = tuple(
            ListItem(
                start,
                end,
                kind,
                before,
                after,
                negated,
                tuple(c for c in commands if c.context.item == index),
            )
            for index, (start, end, kind, before, after, negated) in enumerate(self.items)
        )
        return ShellScript(
            text=self.text,
            items=items,
            compounds=tuple(sorted(self.compounds, key=lambda c: (c.start, -c.end))),
            heredocs=tuple(sorted(self.heredocs, key=lambda h: h.start)),
            comments=tuple(sorted(set(self.comments))),
            problems=tuple(sorted(self.problems, key=lambda p: p.start)),
            expansions=tuple(sorted(set(self.expansions), key=lambda e: e.start)),
            _commands=tuple(commands),
            _regions=tuple(self.regions),
        )

    def find_problems(self, root: Node) -> None:
        """Record the grammar's own error and missing-token nodes."""
        stack = [root]
        while stack:
            node = stack.pop()
            if node.is_missing:
                start, _ = self.span(node)
                self.problems.append(ParseProblem(start, start, f"missing {node.type!r}"))
            elif node.is_error:
                start, end = self.span(node)
                self.problems.append(ParseProblem(start, end, "syntax the grammar does not accept"))
            if node.has_error:
                stack.extend(node.children)

    # -- statement lists -------------------------------------------------------------------------

    def run_list(self, nodes: Sequence[Node], ctx: _Ctx, top_level: bool = False) -> None:
        """Process a statement list: and-or lists separated by ``;``, ``&`` or newlines."""
        groups: list[_AndOr] = []
        for node in nodes:
            kind = node.type
            if kind == "comment":
                self.comment(node)
            elif kind in _SEPARATORS or kind in _CASE_TERMINATORS:
                if groups and groups[-1].terminator is None:
                    groups[-1].terminator = "\n" if node.start_byte in self.repaired else kind
            elif node.is_named:
                if groups and groups[-1].terminator is None:
                    groups[-1].terminator = "\n"
                groups.append(self.and_or(node))
        if groups and groups[-1].terminator == "\n":
            groups[-1].terminator = None  # a final newline joins nothing
        flat: list[tuple[_Pipe, str | None, str | None, bool]] = []
        for group in groups:
            background = group.terminator == "&"
            for index, pipe in enumerate(group.pipes):
                if not pipe.elements:  # only in erroneous input, e.g. a dangling `|`
                    continue
                # Erroneous input can also leave fewer operators than gaps between pipelines.
                before = group.ops[index - 1] if 0 < index <= len(group.ops) else (flat[-1][2] if flat else None)
                after = group.ops[index] if index < len(group.ops) else group.terminator
                flat.append((pipe, before, after, background))
        for pipe, before, after, background in flat:
            if top_level:
                ctx = _Ctx(ctx.scopes, ctx.background, len(self.items), ctx.in_backticks)
                start, end = self.pipe_span(pipe)
                self.items.append((start, end, self.pipe_kind(pipe), before, after, pipe.negated))
            for index, element in enumerate(pipe.elements):
                context = Context(
                    scopes=ctx.scopes,
                    pipeline_index=index,
                    pipeline_length=len(pipe.elements),
                    negated=pipe.negated,
                    background=ctx.background or background,
                    op_before=before,
                    op_after=after,
                    item=ctx.item,
                )
                inner = _Ctx(ctx.scopes, ctx.background or background, ctx.item, ctx.in_backticks)
                if len(pipe.elements) > 1:
                    inner = inner.enter(Scope.PIPELINE)
                self.element(element, context, inner)

    def and_or(self, node: Node) -> _AndOr:
        """Flatten a statement into pipelines joined by ``&&``/``||``, in source order."""
        kind = node.type
        if kind == "list":
            result = _AndOr([], [])
            for child in node.children:
                if child.type in ("&&", "||"):
                    result.ops.append(child.type)
                elif child.type == "comment":
                    self.comment(child)
                elif child.is_named:
                    _append(result, self.and_or(child))
            return result
        if kind == "pipeline":
            result = _AndOr([_Pipe([])], [])
            for child in node.children:
                if child.type == "comment":
                    self.comment(child)
                elif child.is_named:
                    _concatenate(result, self.and_or(child))
            return result
        if kind == "negated_command":
            inner = [child for child in node.children if child.is_named and child.type != "comment"]
            if len(inner) == 1:
                result = self.and_or(inner[0])
                result.pipes[0].negated = True
                return result
        if kind == "redirected_statement":
            return self.redirected(node)
        return _AndOr([_Pipe([_Element(node)])], [])

    def redirected(self, node: Node) -> _AndOr:
        """Attach redirections to the last element; unfold what the grammar nests in heredocs."""
        body = node.child_by_field_name("body")
        result = self.and_or(body) if body is not None else _AndOr([_Pipe([_Element(node)])], [])
        if not result.pipes[-1].elements:  # erroneous input: nothing before the redirections
            result.pipes[-1].elements.append(_Element(node))
        owner = result.pipes[-1].elements[-1]
        for child in node.children:
            if child.type == "file_redirect":
                owner.redirects.append(child)
                owner.extra_words.extend(_extra_destinations(child))
            elif child.type == "herestring_redirect":
                owner.redirects.append(child)
            elif child.type == "heredoc_redirect":
                owner.redirects.append(child)
                rest = self.heredoc_line_rest(child, owner)
                if rest is not None:
                    operator, continuation = rest
                    if operator == "|":
                        _concatenate(result, continuation)
                    else:
                        result.ops.append(operator)
                        _append(result, continuation)
        return result

    def heredoc_line_rest(self, node: Node, owner: _Element) -> tuple[str, _AndOr] | None:
        """What follows ``<<DELIM`` on its line, which tree-sitter puts inside the redirect node."""
        operator: str | None = None
        for index, child in enumerate(node.children):
            name = node.field_name_for_child(index)
            if name == "operator":
                operator = child.type
            elif name == "right":
                return operator or "&&", self.and_or(child)
            elif child.type == "pipeline":
                return "|", self.and_or(child)
            elif child.type in ("file_redirect", "herestring_redirect"):
                owner.redirects.append(child)
                owner.extra_words.extend(_extra_destinations(child))
            elif name == "argument":
                owner.extra_words.append(child)
        return None

    def pipe_span(self, pipe: _Pipe) -> tuple[int, int]:
        """Character span of a pipeline on its command line."""
        starts, ends = [], []
        for element in pipe.elements:
            start, end = self.element_span(element)
            starts.append(start)
            ends.append(end)
        return min(starts), max(ends)

    def element_span(self, element: _Element) -> tuple[int, int]:
        """Character span of an element with its redirections, excluding heredoc bodies."""
        start, end = element.node.start_byte, element.node.end_byte
        if element.node.type == "redirected_statement":  # a redirection-only statement
            end = start
        for node in element.redirects:
            start = min(start, node.start_byte)
            end = max(end, _redirect_line_end(node))
        for node in element.extra_words:
            end = max(end, node.end_byte)
        return self.char(start), self.char(end)

    @staticmethod
    def pipe_kind(pipe: _Pipe) -> str:
        """The :attr:`ListItem.kind` of a pipeline."""
        if len(pipe.elements) > 1:
            return "pipeline"
        node = pipe.elements[0].node
        if node.type in ("variable_assignment", "variable_assignments"):
            return "assignment"
        if node.type in _SIMPLE_TYPES or node.type == "redirected_statement":
            return "command"
        return _compound_kind(node)

    # -- elements --------------------------------------------------------------------------------

    def element(self, element: _Element, context: Context, ctx: _Ctx) -> None:
        """Record a simple command, or a compound command and everything nested in it."""
        node = element.node
        if node.type in _SIMPLE_TYPES or node.type == "redirected_statement":
            self.simple_command(element, context, ctx)
            return
        for redirect in element.redirects:
            self.redirect(redirect, ctx)
        kind = _compound_kind(node)
        if kind == "unknown":  # an ERROR node or something new: find what commands we can
            if node.type == "ERROR":
                self.run_list(node.children, ctx)
            else:
                self.scan_children(node, ctx)
            return
        start, end = self.element_span(element)
        name: str | None = None
        assigns: list[str] = []
        if kind == "subshell":
            self.run_list(node.children, ctx.enter(Scope.SUBSHELL))
        elif kind == "group":
            self.run_list(node.children, ctx.enter(Scope.GROUP))
        elif kind in ("arithmetic", "test"):
            self.scan_children(node, ctx)
            assigns = self.arithmetic_targets(node) if kind == "arithmetic" else []
        elif kind == "if":
            self.if_statement(node, ctx)
        elif kind in ("while", "until"):
            self.loop(node, ctx, Scope.LOOP_CONDITION)
        elif kind in ("for", "select"):
            variable = node.child_by_field_name("variable")
            if node.type == "c_style_for_statement":
                assigns = self.arithmetic_targets(node, skip="body")
            elif variable is not None:
                assigns = [self.source(variable)]
            self.loop(node, ctx, None)
        elif kind == "case":
            self.case_statement(node, ctx)
        elif kind == "function":
            name_node = node.child_by_field_name("name")
            name = self.source(name_node) if name_node is not None else None
            body = node.child_by_field_name("body")
            if body is not None:
                self.element(_Element(body), context, ctx.enter(Scope.FUNCTION_BODY))
        self.compounds.append(
            Compound(kind, start, end, context, name or (assigns[0] if assigns else None), tuple(assigns))
        )

    def if_statement(self, node: Node, ctx: _Ctx) -> None:
        """Split an ``if`` into condition and branch statement lists at its keywords."""
        region: list[Node] = []
        scope = Scope.IF_CONDITION
        for child in node.children:
            if child.type in ("if", "elif", "then", "else", "fi"):
                self.run_list(region, ctx.enter(scope))
                region = []
                scope = Scope.IF_BODY if child.type in ("then", "else") else Scope.IF_CONDITION
            elif child.type in ("elif_clause", "else_clause"):
                self.run_list(region, ctx.enter(scope))
                region = []
                self.if_statement(child, ctx)
            else:
                region.append(child)
        self.run_list(region, ctx.enter(scope))

    def loop(self, node: Node, ctx: _Ctx, condition: Scope | None) -> None:
        """``while``/``until`` conditions are statement lists; ``for`` words are scanned for substitutions."""
        body = node.child_by_field_name("body")
        region = []
        for child in node.children:
            if child == body:
                break
            if condition is not None:
                region.append(child)
            elif child.is_named and child.type not in ("variable_name", "comment"):
                self.scan(child, ctx)
        if condition is not None:
            self.run_list(region, ctx.enter(condition))
        if body is not None:
            self.run_list(body.children, ctx.enter(Scope.LOOP_BODY))

    def case_statement(self, node: Node, ctx: _Ctx) -> None:
        """Scan the subject and patterns for substitutions; each branch is a statement list."""
        for index, child in enumerate(node.children):
            if child.type == "case_item":
                statements: list[Node] = []
                seen_paren = False
                for item_index, part in enumerate(child.children):
                    if not seen_paren:
                        seen_paren = part.type == ")"
                        if child.field_name_for_child(item_index) == "value":
                            self.scan(part, ctx)
                    else:
                        statements.append(part)
                self.run_list(statements, ctx.enter(Scope.CASE_BRANCH))
            elif node.field_name_for_child(index) == "value":
                self.scan(child, ctx)
            elif child.type == "comment":
                self.comment(child)

    def arithmetic_targets(self, node: Node, skip: str | None = None) -> list[str]:
        """Variables assigned inside ``(( ))`` or a C-style ``for`` header."""
        targets: list[str] = []
        stack = [(node, None)]
        while stack:
            current, parent = stack.pop()
            if current.type in _ASSIGNMENT_OPERATORS and parent is not None:
                operand = parent.child_by_field_name("left") or parent.child_by_field_name("name")
                if operand is None:
                    operand = next((c for c in parent.children if c.is_named), None)
                if operand is not None:
                    targets.append(self.source(operand))
            for index, child in enumerate(current.children):
                if skip is None or current.field_name_for_child(index) != skip:
                    stack.append((child, current))
        return sorted(set(targets))

    # -- simple commands -------------------------------------------------------------------------

    def simple_command(self, element: _Element, context: Context, ctx: _Ctx) -> None:
        """Build a :class:`Command` from its node plus the words and redirections found elsewhere."""
        node = element.node
        word_nodes: list[Node] = []
        assignments: list[Word] = []
        redirects: list[Redirect] = []
        if node.type == "variable_assignment":
            children = [node]
        elif node.type == "redirected_statement":  # redirections only; they are in element.redirects
            children = []
        else:
            children = list(node.children)
        for child in children:
            kind = child.type
            if kind == "variable_assignment" and node.type in (
                "command",
                "variable_assignment",
                "variable_assignments",
            ):
                assignments.append(self.word([child]))
                self.scan(child, ctx)
            elif kind in _REDIRECT_TYPES:
                redirects.append(self.redirect(child, ctx))
                word_nodes.extend(_extra_destinations(child))
            elif kind == "command_name":
                word_nodes.extend(child.named_children or [child])
            elif kind == "comment":
                self.comment(child)
            elif kind == "ERROR":
                self.run_list(child.children, ctx)
            else:  # arguments, the `export` keyword, and tokens such as the `$` of `$"..."`
                word_nodes.append(child)
        for redirect in element.redirects:
            redirects.append(self.redirect(redirect, ctx))
        word_nodes.extend(element.extra_words)
        word_nodes.sort(key=lambda n: n.start_byte)
        for word_node in word_nodes:
            self.scan(word_node, ctx)
        words = tuple(self.word(group) for group in _adjacent_groups(word_nodes))
        start, end = self.element_span(element)
        if node.type == "redirected_statement" and redirects:
            start = min(start, redirects[0].start)
            end = max(r.end for r in redirects)
        self.commands.append(
            Command(
                start,
                end,
                words,
                tuple(assignments),
                tuple(sorted(redirects, key=lambda r: r.start)),
                context,
            )
        )

    def redirect(self, node: Node, ctx: _Ctx) -> Redirect:
        """Build a :class:`Redirect`, recording heredocs and scanning targets for substitutions."""
        start, _ = self.span(node)
        end = self.char(_redirect_line_end(node))
        fd: str | None = None
        operator = ""
        target: Word | None = None
        heredoc: Heredoc | None = None
        for index, child in enumerate(node.children):
            name = node.field_name_for_child(index)
            if child.type == "file_descriptor":
                fd = self.source(child)
            elif not child.is_named and not operator:
                operator = child.type
            elif child.type == "heredoc_start":
                heredoc = self.heredoc(node, child, operator)
                target = Word(self.source(child), *self.span(child), heredoc.delimiter)
            elif child.type == "heredoc_body":
                self.scan(child, ctx.enter(Scope.HEREDOC))
            elif node.type == "heredoc_redirect":
                continue  # the rest of the line: handled as statements, redirections and words
            elif target is None and (name == "destination" or node.type == "herestring_redirect"):
                target = self.word([child])
                self.scan(child, ctx)
        return Redirect(start, end, operator, fd, target, heredoc)

    def heredoc(self, node: Node, start_node: Node, operator: str) -> Heredoc:
        """Record a heredoc and protect its body and delimiter line from edits."""
        raw = self.source(start_node)
        quoted = any(q in raw for q in "'\"\\")
        delimiter = "".join(ch for ch in raw if ch not in "'\"\\")
        body = next((c for c in node.children if c.type == "heredoc_body"), None)
        end_node = next((c for c in node.children if c.type == "heredoc_end"), None)
        if end_node is not None and (end_node.is_missing or end_node.end_byte == end_node.start_byte):
            end_node = None
        # The body starts on a line of its own; the grammar's node may start after `<<-` tabs.
        if body is not None:
            anchor = self.char(body.start_byte)
        elif end_node is not None:
            anchor = self.char(end_node.start_byte)
        else:
            newline = self.text.find("\n", self.char(start_node.end_byte))
            anchor = len(self.text) if newline < 0 else newline + 1
        body_start = self.text.rfind("\n", 0, anchor) + 1
        if end_node is not None:
            body_end = self.text.rfind("\n", 0, self.char(end_node.start_byte)) + 1
            end = self.char(end_node.end_byte)
        else:
            body_end = end = len(self.text)
        heredoc = Heredoc(
            self.char(node.start_byte),
            delimiter,
            quoted,
            operator == "<<-",
            body_start,
            max(body_end, body_start),
            end,
        )
        self.heredocs.append(heredoc)
        self.regions.append(_Region(body_start - 1, end + 1, True))
        return heredoc

    # -- words, literals and nested substitutions -------------------------------------------------

    def comment(self, node: Node) -> None:
        """Record a comment; text inserted at its end would still be comment, hence ``end + 1``."""
        start, end = self.span(node)
        self.comments.append((start, end))
        self.regions.append(_Region(start, end + 1, True))

    def scan(self, node: Node, ctx: _Ctx) -> None:
        """Find substitutions (whose commands are real), strings and comments inside a word-level node."""
        kind = node.type
        if kind == "command_substitution":
            backticks = node.children[0].type == "`"
            start, end = self.span(node)
            if backticks and ctx.in_backticks:
                self.problems.append(
                    ParseProblem(start, end, "unescaped backticks nested in backticks: the parser misread them")
                )
            self.regions.append(_Region(start, end, False))
            inner = ctx.enter(Scope.COMMAND_SUBSTITUTION)
            self.run_list(
                node.children, _Ctx(inner.scopes, inner.background, inner.item, ctx.in_backticks or backticks)
            )
        elif kind == "process_substitution":
            self.regions.append(_Region(*self.span(node), False))
            self.run_list(node.children, ctx.enter(Scope.PROCESS_SUBSTITUTION))
        elif kind in ("raw_string", "ansi_c_string"):
            self.regions.append(_Region(*self.span(node), True))
        elif kind == "comment":
            self.comment(node)
        elif kind in ("simple_expansion", "expansion"):
            name = next((c for c in node.children if c.type in ("variable_name", "special_variable_name")), None)
            if name is not None:
                self.expansions.append(Expansion(self.source(name), *self.span(node)))
            self.scan_children(node, ctx)
        elif kind in _STATEMENT_TYPES and kind != "variable_assignment":  # only in mis-parsed text
            self.run_list([node], ctx)
        else:
            if kind in ("string", "translated_string"):
                self.regions.append(_Region(*self.span(node), True))
            self.scan_children(node, ctx)

    def scan_children(self, node: Node, ctx: _Ctx) -> None:
        """Scan the parts of a node that is itself already handled."""
        for child in node.children:
            self.scan(child, ctx)

    def value(self, node: Node) -> tuple[str, str] | None:
        """Static value of a word part and its pattern (quoted characters masked), or ``None``."""
        kind = node.type
        text = self.source(node)
        if kind == "word" or kind == "number":
            return _unescape_unquoted(text)
        if kind == "raw_string":
            return text[1:-1], "x" * (len(text) - 2)
        if kind == "string":
            if any(c.type not in ('"', "string_content") for c in node.children):
                return None
            inner = _unescape_double_quoted(text[1:-1])
            return inner, "x" * len(inner)
        if kind == "ansi_c_string":
            inner = _unescape_ansi_c(text[2:-1])
            return inner, "x" * len(inner)
        if kind in ("concatenation", "command_name"):
            parts = [self.value(child) for child in node.children]
            if None in parts:
                return None
            return "".join(p[0] for p in parts), "".join(p[1] for p in parts)
        if kind == "variable_assignment":
            name = node.child_by_field_name("name")
            value = node.child_by_field_name("value")
            operator = next((c.type for c in node.children if not c.is_named), "=")
            rest = self.value(value) if value is not None else ("", "")
            if name is None or rest is None:
                return None
            prefix = self.source(name) + operator
            return prefix + rest[0], "x" * len(prefix) + rest[1]
        if kind == "variable_name":
            return text, text
        if not node.is_named and kind in (
            "export",
            "declare",
            "local",
            "readonly",
            "typeset",
            "unset",
            "unsetenv",
        ):
            return text, text
        return None


def _compound_kind(node: Node) -> str:
    """The :class:`Compound` kind of a grammar node, ``"unknown"`` for anything else."""
    kind = node.type
    if kind == "compound_statement":
        return "arithmetic" if node.children and node.children[0].type == "((" else "group"
    if kind in ("while_statement", "for_statement"):
        return node.children[0].type  # while/until, for/select
    return {
        "subshell": "subshell",
        "if_statement": "if",
        "c_style_for_statement": "for",
        "case_statement": "case",
        "function_definition": "function",
        "test_command": "test",
    }.get(kind, "unknown")


def _append(result: _AndOr, other: _AndOr) -> None:
    """Append an and-or list whose joining operator is already in ``result.ops``."""
    result.pipes.extend(other.pipes)
    result.ops.extend(other.ops)


def _concatenate(result: _AndOr, other: _AndOr) -> None:
    """Join ``other`` with ``|``: its first pipeline continues ``result``'s last one."""
    first, *rest = other.pipes
    target = result.pipes[-1]
    if not target.elements:  # `! a | b`: the grammar negates `a`, the shell negates the pipeline
        target.negated = first.negated
    target.elements.extend(first.elements)
    result.pipes.extend(rest)
    result.ops.extend(other.ops)


def _extra_destinations(node: Node) -> list[Node]:
    """In ``echo a > f b`` the grammar makes ``b`` a second destination; it is an argument."""
    if node.type != "file_redirect":
        return []
    destinations = [c for i, c in enumerate(node.children) if node.field_name_for_child(i) == "destination"]
    return destinations[1:]


def _redirect_line_end(node: Node) -> int:
    """Byte end of a redirection's text on the command line (a heredoc stops at its delimiter word)."""
    if node.type != "heredoc_redirect":
        return node.end_byte
    start = next((c for c in node.children if c.type == "heredoc_start"), None)
    return node.start_byte if start is None else start.end_byte


def _adjacent_groups(nodes: Sequence[Node]) -> Iterator[list[Node]]:
    """Group parts written with no blank between them: in shell they form one word."""
    group: list[Node] = []
    for node in nodes:
        if group and node.start_byte != group[-1].end_byte:
            yield group
            group = []
        group.append(node)
    if group:
        yield group


def _unescape_unquoted(text: str) -> tuple[str, str]:
    """Quote removal for an unquoted word; escaped characters are masked in the pattern."""
    value, pattern = [], []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            index += 1
            if text[index] != "\n":  # a line continuation disappears
                value.append(text[index])
                pattern.append("x")
        else:
            value.append(char)
            pattern.append(char)
        index += 1
    return "".join(value), "".join(pattern)


def _unescape_double_quoted(text: str) -> str:
    """Inside double quotes a backslash escapes only ``$ ` " \\`` and newline."""
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in '$`"\\\n':
            index += 1
            if text[index] != "\n":
                out.append(text[index])
        else:
            out.append(char)
        index += 1
    return "".join(out)


_ANSI_C_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def _unescape_ansi_c(text: str) -> str:
    """Decode the common escapes of ``$'...'`` (octal, ``\\xHH`` and the letter escapes)."""
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code in _ANSI_C_ESCAPES:
            out.append(_ANSI_C_ESCAPES[code])
            index += 2
        elif code == "x":
            digits = _take(text, index + 2, "0123456789abcdefABCDEF", 2)
            out.append(chr(int(digits, 16)) if digits else "\\x")
            index += 2 + len(digits)
        elif code in "01234567":
            digits = _take(text, index + 1, "01234567", 3)
            out.append(chr(int(digits, 8)))
            index += 1 + len(digits)
        else:
            out.append("\\" + code)
            index += 2
    return "".join(out)


def _take(text: str, start: int, alphabet: str, limit: int) -> str:
    """Up to ``limit`` characters of ``alphabet`` from ``text[start:]`` (the digits of an escape)."""
    end = start
    while end < len(text) and end - start < limit and text[end] in alphabet:
        end += 1
    return text[start:end]


def _check_expansions(value: str, parts: list[tuple[str, str] | None]) -> str | None:
    """Reject words that the shell still expands: globs, brace expansion, a leading tilde."""
    pattern = "".join(p[1] for p in parts if p is not None)
    if any(char in pattern for char in "*?[") or pattern.startswith("~"):
        return None
    opening = pattern.find("{")
    closing = pattern.find("}", opening + 1)
    if opening >= 0 and closing > opening:
        inner = pattern[opening + 1 : closing]
        if "," in inner or ".." in inner:
            return None
    return value


# ----------------------------------------------------------------------------------------------
# Wrappers and programs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a command actually runs, once wrappers such as ``sudo`` or ``env`` are looked through.

    Indices point into ``command.words``.  ``start_index`` is the first word of the invocation
    (``python3`` in ``python3 -m pip install x``) and ``program_index`` the word naming the program
    (``pip``).  ``options_before`` are the words between the program and its subcommand (options and
    their values), ``options_after`` the option words after the subcommand (with values of options
    known to take one) up to ``--``, and ``operands`` the remaining words.  For programs without
    subcommands ``subcommand_index`` is ``None`` and options/operands follow the program word.
    """

    command: Command
    program: str
    wrappers: tuple[str, ...]
    start_index: int
    program_index: int
    subcommand_index: int | None
    options_before: tuple[Word, ...]
    options_after: tuple[Word, ...]
    operands: tuple[Word, ...]
    end_of_options_index: int | None
    value_options: frozenset[str] = field(repr=False)

    @property
    def program_word(self) -> Word:
        """The word naming the program."""
        return self.command.words[self.program_index]

    @property
    def subcommand_word(self) -> Word | None:
        """The subcommand word, e.g. ``install``."""
        return None if self.subcommand_index is None else self.command.words[self.subcommand_index]

    @property
    def subcommand(self) -> str | None:
        """The subcommand's value, e.g. ``"install"``."""
        word = self.subcommand_word
        return None if word is None else word.value

    def has_option(self, *names: str) -> bool:
        """Whether any of ``names`` (``--no-cache-dir``, ``-y``) is given, also as ``--x=v`` or in ``-qy``."""
        for words in (self.options_before, self.options_after):
            index = 0
            while index < len(words):
                value = words[index].value or ""
                if value.startswith("--"):
                    if value.split("=", 1)[0] in names:
                        return True
                elif value.startswith("-") and len(value) > 1:
                    for letter in value[1:]:
                        if "-" + letter in names:
                            return True
                        if "-" + letter in self.value_options:
                            break  # the rest of the word is this option's value
                index += _option_width(value, self.value_options)
        return False


@dataclass(frozen=True)
class _Wrapper:
    """How to find the wrapped command: options taking a value, options meaning "no command",
    positional words before the command, whether ``VAR=value`` words may precede it."""

    value_options: frozenset[str] = frozenset()
    stop_options: frozenset[str] = frozenset()
    positionals: int = 0
    assignments: bool = False


_WRAPPERS: dict[str, _Wrapper] = {
    "sudo": _Wrapper(
        frozenset(
            {
                "-u",
                "-g",
                "-C",
                "-D",
                "-p",
                "-r",
                "-t",
                "-U",
                "-T",
                "-R",
                "--user",
                "--group",
                "--close-from",
                "--chdir",
                "--prompt",
                "--role",
                "--type",
                "--other-user",
                "--command-timeout",
                "--chroot",
            }
        ),
        frozenset(
            {
                "-l",
                "-v",
                "-V",
                "-e",
                "-h",
                "-K",
                "--list",
                "--validate",
                "--version",
                "--edit",
                "--help",
                "--remove-timestamp",
            }
        ),
        assignments=True,
    ),
    "env": _Wrapper(
        frozenset({"-u", "-C", "--unset", "--chdir"}),
        frozenset({"-S", "--split-string", "--help", "--version"}),
        assignments=True,
    ),
    "nice": _Wrapper(frozenset({"-n", "--adjustment"})),
    "nohup": _Wrapper(),
    "time": _Wrapper(frozenset({"-f", "-o", "--format", "--output"})),
    "command": _Wrapper(stop_options=frozenset({"-v", "-V"})),
    "builtin": _Wrapper(),
    "exec": _Wrapper(frozenset({"-a"})),
    "stdbuf": _Wrapper(frozenset({"-i", "-o", "-e", "--input", "--output", "--error"})),
    "ionice": _Wrapper(
        frozenset({"-c", "-n", "--class", "--classdata"}),
        frozenset({"-p", "-P", "-u", "--pid", "--pgid", "--uid"}),
    ),
    "timeout": _Wrapper(frozenset({"-s", "-k", "--signal", "--kill-after"}), positionals=1),
    "gosu": _Wrapper(positionals=1),
    "su-exec": _Wrapper(positionals=1),
    "eatmydata": _Wrapper(),
}

_APT = frozenset({"-o", "-c", "-t", "--option", "--config-file", "--target-release", "--default-release"})
_RPM_TOOLS = frozenset(
    {
        "-c",
        "--config",
        "--installroot",
        "--releasever",
        "--setopt",
        "--enablerepo",
        "--disablerepo",
        "-d",
        "--debuglevel",
        "-e",
        "--errorlevel",
        "-x",
        "--exclude",
        "--repo",
        "--repoid",
        "--forcearch",
    }
)
_CONDA = frozenset({"-n", "--name", "-p", "--prefix", "-c", "--channel"})

# Programs that take a subcommand, with the options (global or of their subcommands) that take a
# separate value word, so `apt-get -o X=1 install` finds `install` and `apk add --virtual .deps x`
# does not mistake `.deps` for a package.
_SUBCOMMAND_PROGRAMS: dict[str, frozenset[str]] = {
    "apt-get": _APT,
    "apt": _APT,
    "apt-cache": _APT,
    "aptitude": _APT,
    "pip": frozenset(
        {
            "--python",
            "--log",
            "--log-file",
            "--proxy",
            "--retries",
            "--timeout",
            "--exists-action",
            "--trusted-host",
            "--cert",
            "--client-cert",
            "--cache-dir",
            "--use-feature",
            "--use-deprecated",
            "--keyring-provider",
            "-r",
            "--requirement",
            "-c",
            "--constraint",
            "-e",
            "--editable",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "-t",
            "--target",
            "--prefix",
            "--root",
            "--src",
            "--upgrade-strategy",
            "--platform",
            "--python-version",
            "--implementation",
            "--abi",
            "--report",
            "-C",
            "--config-settings",
            "--global-option",
            "--no-binary",
            "--only-binary",
            "--progress-bar",
            "--root-user-action",
            "-d",
            "--dest",
            "-w",
            "--wheel-dir",
        }
    ),
    "apk": frozenset(
        {
            "-X",
            "--repository",
            "-p",
            "--root",
            "--arch",
            "--cache-dir",
            "--keys-dir",
            "--repositories-file",
            "-t",
            "--virtual",
        }
    ),
    "dnf": _RPM_TOOLS,
    "yum": _RPM_TOOLS,
    "microdnf": _RPM_TOOLS,
    "tdnf": _RPM_TOOLS,
    "dnf5": _RPM_TOOLS,
    "zypper": frozenset({"-R", "--root", "-c", "--config", "-r", "--repo"}),
    "npm": frozenset({"--prefix", "-w", "--workspace", "--registry", "--cache", "--loglevel", "--userconfig", "--tag"}),
    "yarn": frozenset({"--cwd", "--cache-folder", "--registry", "--network-timeout", "--modules-folder", "--mutex"}),
    "pnpm": frozenset({"-C", "--dir", "-F", "--filter", "--registry", "--store-dir"}),
    "gem": frozenset({"-v", "--version", "-s", "--source", "-i", "--install-dir", "-n", "--bindir", "--platform"}),
    "bundle": frozenset({"--gemfile", "--path", "-j", "--jobs", "--retry", "--without", "--with"}),
    "composer": frozenset({"-d", "--working-dir"}),
    "conda": _CONDA,
    "mamba": _CONDA,
    "micromamba": _CONDA,
    "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "pipenv": frozenset({"--python"}),
    "uv": frozenset(
        {
            "-p",
            "--python",
            "--directory",
            "--project",
            "--cache-dir",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-r",
            "--requirement",
            "-c",
            "--constraint",
        }
    ),
    "cargo": frozenset({"--manifest-path", "-Z", "--config", "--color"}),
    "go": frozenset(),
    "git": frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"}),
    "docker": frozenset({"-H", "--host", "--config", "--context", "-c", "-l", "--log-level"}),
}

_PYTHON_VALUE_OPTIONS = frozenset({"-W", "-X", "-c", "-m"})


def _basename(value: str) -> str:
    """``/usr/bin/apt-get`` runs ``apt-get``."""
    return value.rsplit("/", 1)[-1]


def _versioned(name: str, stem: str) -> bool:
    """``pip3``, ``pip3.11``, ``python3.12`` are the versioned forms of ``pip``/``python``."""
    return name.startswith(stem) and all(c.isdigit() or c == "." for c in name[len(stem) :])


def _is_assignment(value: str) -> bool:
    """Whether a word is ``NAME=value``, which ``env`` and ``sudo`` accept before the command."""
    name, equals, _ = value.partition("=")
    return bool(equals) and name.replace("_", "a").isalnum() and not name[0].isdigit()


def _option_width(value: str, value_options: frozenset[str]) -> int:
    """How many words the option word ``value`` occupies (2 when its value is the next word)."""
    if value.startswith("--"):
        return 2 if value in value_options else 1
    for position, letter in enumerate(value[1:], start=1):
        if "-" + letter in value_options:
            return 2 if position == len(value) - 1 else 1
    return 1


def _unwrap(words: tuple[Word, ...], index: int, wrapper: _Wrapper) -> int | None:
    """Index of the command a wrapper runs, or ``None`` when it runs none we can see."""
    index += 1
    while index < len(words):
        value = words[index].value
        if value is None:
            return None
        if value == "--":
            index += 1
            break
        if (wrapper.assignments and _is_assignment(value)) or value == "-":
            index += 1
        elif value.startswith("-"):
            if value.split("=", 1)[0] in wrapper.stop_options or value[:2] in wrapper.stop_options:
                return None
            index += _option_width(value, wrapper.value_options)
        else:
            break
    while wrapper.assignments and index < len(words) and _is_assignment(words[index].value or ""):
        index += 1
    index += wrapper.positionals
    return index if index < len(words) else None


def invocation_of(command: Command) -> Invocation | None:
    """The effective program and subcommand of ``command``, looking through wrappers.

    ``sudo -E apt-get -y install x`` gives program ``apt-get``, subcommand ``install``;
    ``python3 -m pip install x`` and ``pip3 install x`` give program ``pip``.  Returns ``None`` when
    the program name is not static (``$PIP install``) or the command has no words.
    """
    found = command._invocation
    if found is False:
        found = _find_invocation(command)
        object.__setattr__(command, "_invocation", found)  # a memo, not a change: commands are immutable
    return found


def _find_invocation(command: Command) -> Invocation | None:
    words = command.words
    index = 0
    wrappers: list[str] = []
    while index < len(words):
        value = words[index].value
        if value is None:
            return None
        name = _basename(value)
        wrapper = _WRAPPERS.get(name)
        if wrapper is None:
            break
        inner = _unwrap(words, index, wrapper)
        if inner is None:
            break
        wrappers.append(name)
        index = inner
    if index >= len(words):
        return None
    start_index = program_index = index
    program = _basename(words[index].value or "")
    if _versioned(program, "python"):
        module_index = _python_module(words, index)
        if module_index is not None and words[module_index].value in ("pip", "-mpip"):
            program, program_index = "pip", module_index
    elif _versioned(program, "pip"):
        program = "pip"
    value_options = _SUBCOMMAND_PROGRAMS.get(program, frozenset())
    cursor = program_index + 1
    subcommand_index: int | None = None
    options_before: list[Word] = []
    if program in _SUBCOMMAND_PROGRAMS:
        probe = cursor
        while probe < len(words):
            value = words[probe].value
            if value is None or value == "--":
                break
            if not value.startswith("-"):
                subcommand_index = probe
                break
            probe += _option_width(value, value_options)
        if subcommand_index is not None:
            options_before = list(words[cursor:subcommand_index])
            cursor = subcommand_index + 1
    options_after: list[Word] = []
    operands: list[Word] = []
    end_of_options: int | None = None
    while cursor < len(words):
        value = words[cursor].value
        if end_of_options is None and value == "--":
            end_of_options = cursor
            cursor += 1
        elif end_of_options is None and value is not None and value.startswith("-") and value != "-":
            width = _option_width(value, value_options)
            options_after.extend(words[cursor : cursor + width])
            cursor += width
        else:
            operands.append(words[cursor])
            cursor += 1
    return Invocation(
        command=command,
        program=program,
        wrappers=tuple(wrappers),
        start_index=start_index,
        program_index=program_index,
        subcommand_index=subcommand_index,
        options_before=tuple(options_before),
        options_after=tuple(options_after),
        operands=tuple(operands),
        end_of_options_index=end_of_options,
        value_options=value_options,
    )


def _python_module(words: tuple[Word, ...], index: int) -> int | None:
    """Index of the word naming the module in ``python [options] -m module``."""
    index += 1
    while index < len(words):
        value = words[index].value
        if value is None or not value.startswith("-") or value in ("-", "--", "-c"):
            return None
        if value == "-m":
            return index + 1 if index + 1 < len(words) else None
        if value.startswith("-m"):
            return index
        index += _option_width(value, _PYTHON_VALUE_OPTIONS)
    return None


# ----------------------------------------------------------------------------------------------
# Merging scripts with &&
# ----------------------------------------------------------------------------------------------


class HazardKind(StrEnum):
    """Why ``first && second`` would not behave like two separate RUN instructions."""

    PARSE_ERROR = "parse_error"  # structure unknown: refuse
    EMPTY = "empty"  # nothing to join: refuse
    STATE_CHANGE = "state_change"  # cd, set, export ... leak into the next script
    EARLY_EXIT = "early_exit"  # exit/exec/return would skip the next script
    BACKGROUND = "background"  # a job keeps running while the next script runs: refuse
    TRAILING_TEXT = "trailing_text"  # a comment, heredoc or `;` at the end swallows or breaks `&& next`
    NOT_AND_CHAIN = "not_and_chain"  # the second script's `||`, `;`, newline or `&` would rebind
    # `set -e` turns on errexit: joined with `&&` it would stop the next script at its first failing
    # command, and in `( ... ) && next` POSIX shells ignore -e inside the subshell: refuse.
    ERREXIT = "errexit"


# Kinds neutralised by running the script in a subshell: `(\nfirst\n) && second`, or for the
# second script `first && (\nsecond\n)`.
_SUBSHELL_SAFE = frozenset(
    {HazardKind.STATE_CHANGE, HazardKind.EARLY_EXIT, HazardKind.TRAILING_TEXT, HazardKind.NOT_AND_CHAIN}
)


@dataclass(frozen=True, slots=True)
class MergeHazard:
    """One reason a merge would change meaning, located in the script it comes from."""

    kind: HazardKind
    reason: str
    start: int
    end: int
    in_second: bool = False

    @property
    def fixed_by_subshell(self) -> bool:
        """Whether wrapping that script in ``( ... )`` (closing paren on its own line) removes it."""
        return self.kind in _SUBSHELL_SAFE


_STATE_BUILTINS: dict[str, str] = {
    "cd": "changes the working directory for the commands after it",
    "pushd": "changes the working directory for the commands after it",
    "popd": "changes the working directory for the commands after it",
    "shopt": "changes shell options for the commands after it",
    "export": "exports variables to the commands after it",
    "declare": "sets shell variables seen by the commands after it",
    "typeset": "sets shell variables seen by the commands after it",
    "local": "sets shell variables seen by the commands after it",
    "readonly": "makes variables read-only for the commands after it",
    "unset": "unsets variables for the commands after it",
    "alias": "defines aliases",
    "unalias": "removes aliases",
    "read": "sets shell variables seen by the commands after it",
    "mapfile": "sets shell variables seen by the commands after it",
    "readarray": "sets shell variables seen by the commands after it",
    "getopts": "sets shell variables seen by the commands after it",
    "let": "sets shell variables seen by the commands after it",
    "source": "runs a file that can change the shell's state",
    ".": "runs a file that can change the shell's state",
    "eval": "runs code that can change the shell's state",
    "trap": "sets a trap that would also apply to (and an EXIT trap run after) the next script",
    "umask": "changes the file-creation mask of the commands after it",
    "ulimit": "changes resource limits of the commands after it",
    "shift": "changes the positional parameters",
    "enable": "enables or disables builtins",
}

# Builtins that only print something when called without arguments.
_PRINT_WITHOUT_ARGUMENTS = frozenset(
    {
        "export",
        "declare",
        "typeset",
        "readonly",
        "alias",
        "trap",
        "shopt",
        "set",
        "umask",
        "ulimit",
        "enable",
        "local",
    }
)


def analyze_merge(first: str | ShellScript, second: str | ShellScript | None = None) -> tuple[MergeHazard, ...]:
    """Every reason ``first && second`` would not mean "run ``second`` in a fresh shell if ``first``
    succeeded", which is what two separate RUN instructions do.

    Top-level ``;``, ``||`` or newlines in ``first`` are not hazards: ``&&`` binds tighter than
    ``;`` and as tight as ``||`` (left to right), so the appended command runs exactly when the
    script's final status is success, as a following RUN would.  In ``second`` they are hazards,
    because there they would bind to ``first``'s status.
    """
    script = first if isinstance(first, ShellScript) else parse_shell(first)
    hazards = list(_first_hazards(script))
    if second is not None:
        other = second if isinstance(second, ShellScript) else parse_shell(second)
        hazards.extend(_second_hazards(other))
    return tuple(hazards)


def merge_hazards(first: str | ShellScript, second: str | ShellScript | None = None) -> tuple[str, ...]:
    """Human-readable reasons why appending ``&& second`` to ``first`` would change meaning.

    Empty means the plain join is safe.  Use :func:`analyze_merge` to learn which reasons wrapping
    in a subshell removes.
    """
    return tuple(hazard.reason for hazard in analyze_merge(first, second))


def _first_hazards(script: ShellScript) -> Iterator[MergeHazard]:
    """Hazards of the script that ``&& next`` is appended to."""
    text = script.text
    if script.problems:  # one reason is enough: the merge must be refused
        problem = script.problems[0]
        yield MergeHazard(
            HazardKind.PARSE_ERROR,
            f"the script does not parse cleanly ({problem.message} at offset {problem.start})",
            problem.start,
            problem.end,
        )
    if not script.items:
        yield MergeHazard(HazardKind.EMPTY, "the script has no commands", 0, len(text))
        return
    for command in script.commands():
        if command.context.runs_in_current_shell:
            yield from _command_hazards(command, text)
    for compound in script.compounds:
        if not compound.context.runs_in_current_shell:
            continue
        if compound.kind == "function":
            yield MergeHazard(
                HazardKind.STATE_CHANGE,
                f"defines function `{compound.name}` for the commands after it",
                compound.start,
                compound.end,
            )
        elif compound.assigns:
            names = ", ".join(f"`{name}`" for name in compound.assigns)
            if compound.kind in ("for", "select"):
                what = f"the `{compound.kind}` loop"
            else:
                what = f"`{text[compound.start : compound.end]}`"
            yield MergeHazard(
                HazardKind.STATE_CHANGE,
                f"{what} leaves {names} set for the commands after it",
                compound.start,
                compound.end,
            )
    for item in script.items:
        nested = any(c.context.background and not c.context.in_function for c in item.commands)
        if item.background or nested:
            where = "ends with `&`" if item.background and item is script.items[-1] else "starts a background job"
            yield MergeHazard(
                HazardKind.BACKGROUND,
                f"{where} (`{text[item.start : item.end]}`): it would keep running while the next script runs",
                item.start,
                item.end,
            )
    last = script.items[-1]
    if last.op_after == ";":
        yield MergeHazard(HazardKind.TRAILING_TEXT, "ends with `;`, and `; &&` is a syntax error", last.end, len(text))
    yield from _trailing_text(script)


def _command_hazards(command: Command, text: str) -> Iterator[MergeHazard]:
    """Hazards of one simple command that runs in the script's own shell."""
    span = (command.start, command.end)
    snippet = text[command.start : command.end]
    if not command.words:
        if not command.assignments:  # a redirection alone, such as `> /file`
            return
        names = ", ".join(f"`{a.text.split('=', 1)[0].rstrip('+')}`" for a in command.assignments)
        yield MergeHazard(HazardKind.STATE_CHANGE, f"`{snippet}` sets {names} for the commands after it", *span)
        return
    words = command.words
    index = 0
    while (  # `command cd /x` and `builtin cd /x` still run the builtin in this shell
        words[index].value in ("command", "builtin")
        and index + 1 < len(words)
        and not (words[index + 1].value or "-").startswith("-")
    ):
        index += 1
    name = words[index].value
    rest = words[index + 1 :]
    if not rest and name in _PRINT_WITHOUT_ARGUMENTS:
        return
    if name in ("exit", "return"):
        yield MergeHazard(HazardKind.EARLY_EXIT, f"`{snippet}` would end the shell before the next script runs", *span)
    elif name == "exec":
        if any(not (w.value or "x").startswith("-") for w in rest):
            yield MergeHazard(
                HazardKind.EARLY_EXIT,
                f"`{snippet}` replaces the shell, so the next script would never run",
                *span,
            )
        else:
            yield MergeHazard(
                HazardKind.STATE_CHANGE, f"`{snippet}` redirects the output of the commands after it", *span
            )
    elif name == "set":
        yield MergeHazard(
            HazardKind.STATE_CHANGE,
            f"`{snippet}` changes shell options or positional parameters for the commands after it",
            *span,
        )
        if _may_enable_errexit(rest):
            yield MergeHazard(
                HazardKind.ERREXIT,
                f"`{snippet}` turns on errexit: the next script would stop at its first failing command, "
                "and in a subshell joined with `&&` the shell ignores `set -e`",
                *span,
            )
    elif name == "printf" and any((w.value or "").startswith("-v") for w in rest):
        yield MergeHazard(
            HazardKind.STATE_CHANGE, f"`{snippet}` sets a shell variable for the commands after it", *span
        )
    elif name in _STATE_BUILTINS:
        yield MergeHazard(HazardKind.STATE_CHANGE, f"`{snippet}` {_STATE_BUILTINS[name]}", *span)


def _may_enable_errexit(words: Sequence[Word]) -> bool:
    """Whether ``set`` with these arguments can turn on ``-e`` (``-e``, ``-eux``, ``-o errexit``, ``$FLAGS``)."""
    index = 0
    while index < len(words):
        value = words[index].value
        if value is None:
            return True
        if value in ("--", "-") or not value.startswith(("-", "+")):
            return False  # the rest are positional parameters
        flags, has_o, attached = value[1:].partition("o")
        if value[0] == "-" and "e" in flags:
            return True
        if has_o and not attached:
            index += 1
            attached = (words[index].value or "errexit") if index < len(words) else ""
        if value[0] == "-" and attached == "errexit":
            return True
        index += 1
    return False


def _trailing_text(script: ShellScript) -> Iterator[MergeHazard]:
    """Text after the last item that would swallow or break a ``&& next`` appended to the script."""
    text = script.text
    last_end = script.items[-1].end
    trailing_comments = [(start, end) for start, end in script.comments if start >= last_end]
    if trailing_comments:
        yield MergeHazard(
            HazardKind.TRAILING_TEXT,
            "ends with a comment, which would swallow text appended on the same line",
            *trailing_comments[0],
        )
    if script.heredocs and max(h.end for h in script.heredocs) >= len(text.rstrip()):
        heredoc = max(script.heredocs, key=lambda h: h.end)
        yield MergeHazard(
            HazardKind.TRAILING_TEXT,
            f"ends with the body of here-document `{heredoc.delimiter}`; "
            "text appended after its delimiter would break it",
            heredoc.start,
            heredoc.end,
        )


def _second_hazards(script: ShellScript) -> Iterator[MergeHazard]:
    """Hazards of the script placed after ``first &&``: it must be a single ``&&`` chain."""
    if script.problems:
        problem = script.problems[0]
        yield MergeHazard(
            HazardKind.PARSE_ERROR,
            f"the second script does not parse cleanly ({problem.message} at offset {problem.start})",
            problem.start,
            problem.end,
            in_second=True,
        )
    if not script.items:
        yield MergeHazard(HazardKind.EMPTY, "the second script has no commands", 0, len(script.text), True)
        return
    for item in script.items[:-1]:
        operator = item.op_after
        if operator == "||":
            reason = "has a top-level `||`, so `first && a || b` would run `b` when the first script fails"
        elif operator in (";", "\n"):
            shown = "newline" if operator == "\n" else "`;`"
            reason = f"has a top-level {shown}: the commands after it would run even if the first script fails"
        elif operator == "&":
            reason = "starts a background job, which would run even when the first script fails"
        else:
            continue
        yield MergeHazard(HazardKind.NOT_AND_CHAIN, f"the second script {reason}", item.start, item.end, True)
    if script.ends_in_background:
        last = script.items[-1]
        yield MergeHazard(HazardKind.BACKGROUND, "the second script ends with `&`", last.start, last.end, True)
