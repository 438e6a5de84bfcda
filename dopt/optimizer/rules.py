"""What a transform is: a rule that reads a syntax tree and returns findings, each maybe with a fix.

Modelled on ruff: a rule has a stable code, a name, a one-line summary and a documentation page
(its module docstring: what it does, why, an example, and how safe its fix is). A fix is a set of
non-overlapping text edits on the source plus a safety level. Rules are pure: no printing, no file
or network access; everything they need comes in through :class:`Context`.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dopt.optimizer.syntax import Document, Instruction

if TYPE_CHECKING:
    from dopt.optimizer.semantic import Model


class FixSafety(enum.StrEnum):
    """SAFE: same build, same final image apart from caches. UNSAFE: may change behaviour (opt-in)."""

    SAFE = "safe"
    UNSAFE = "unsafe"


class FixScope(enum.StrEnum):
    """How far a rule's fix may reach.

    FINDING: only into the instructions its finding covers; the engine refuses a fix that edits
    anything else. DOCUMENT: the fix restructures the file (joins, moves or splits instructions,
    adds a stage) and may edit any instruction; comments and blank lines still move verbatim.
    """

    FINDING = "finding"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``source[start:end]`` with ``text`` (an insertion when start == end)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Fix:
    edits: tuple[Edit, ...]
    safety: FixSafety
    description: str

    @property
    def start(self) -> int:
        return min(e.start for e in self.edits)

    @property
    def end(self) -> int:
        return max(e.end for e in self.edits)


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem at a place in the file, with an optional fix."""

    code: str
    rule: str
    message: str
    start: int  # source offsets of the reported span
    end: int
    line: int
    column: int
    end_line: int
    end_column: int
    fix: Fix | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Everything a rule may look at: the tree, where it came from and the user's options."""

    document: Document
    path: str = "Dockerfile"
    context_dir: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def model(self) -> Model:
        """Stages, ARG/ENV/WORKDIR/USER/SHELL in force for each instruction."""
        from dopt.optimizer.semantic import build_model

        return build_model(self.document)

    def shared(self, analysis: Callable[[Context], T]) -> T:
        """``analysis(self)``, worked out once per context and then shared by every rule that asks.

        For what many rules derive from the same file: its RUN scripts, its build context, its base
        images. A context lives for one pass of the rules over one document, so the answers cannot
        go stale. ``analysis`` must be a module-level function (it is the key).
        """
        memo: dict[Callable[[Context], Any], Any] = self.__dict__.setdefault("_shared", {})
        if analysis not in memo:
            memo[analysis] = analysis(self)
        return memo[analysis]


class Rule:
    """Base class of every transform. Subclasses set the class attributes and implement :meth:`check`."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    fix_safety: ClassVar[FixSafety | None] = None  # None: reports only
    fix_scope: ClassVar[FixScope] = FixScope.FINDING
    hadolint: ClassVar[str | None] = None  # the hadolint rule with the same meaning
    default_enabled: ClassVar[bool] = True

    def check(self, ctx: Context) -> Iterator[Finding]:
        raise NotImplementedError

    def verify(self, before: Document, after: Document) -> str | None:
        """The rule's own invariant on a rewrite; a message when it does not hold."""
        return None

    @classmethod
    def documentation(cls) -> str:
        module = sys.modules[cls.__module__]
        return (module.__doc__ or cls.summary).strip()

    @classmethod
    def codes(cls) -> tuple[str, ...]:
        return (cls.code, cls.hadolint) if cls.hadolint else (cls.code,)

    def finding(
        self,
        ctx: Context,
        start: int,
        end: int,
        message: str,
        fix: Fix | None = None,
    ) -> Finding:
        doc = ctx.document
        line, column = doc.position(start)
        end_line, end_column = doc.position(max(end, start))
        return Finding(self.code, self.name, message, start, end, line, column, end_line, end_column, fix)

    def at_instruction(self, ctx: Context, ins: Instruction, message: str, fix: Fix | None = None) -> Finding:
        """A finding spanning an instruction's first line, from its keyword."""
        line_end = ctx.document.source.find("\n", ins.keyword_start)
        end = ins.end if line_end == -1 else min(line_end, ins.end)
        if end > ins.keyword_start and ctx.document.source[end - 1] == "\r":
            end -= 1
        return self.finding(ctx, ins.keyword_start, end, message, fix)

    def make_fix(self, description: str, *edits: Edit, safety: FixSafety | None = None) -> Fix:
        chosen = safety or self.fix_safety
        assert chosen is not None, f"{self.code} declares no fix safety"
        return Fix(tuple(edits), chosen, description)
