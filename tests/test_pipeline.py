"""The engine: fixed point, non-overlapping edits, verification of every rewrite."""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.pipeline import run
from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.syntax import Document
from dopt.transforms import all_rules


class _BreaksSyntax(Rule):
    """Proposes an edit that leaves an unterminated heredoc behind."""

    code = "T001"
    name = "breaks-syntax"
    summary = "test rule"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        ins = ctx.document.instructions[-1]
        fix = self.make_fix("break it", Edit(ins.end, ins.end, "RUN <<EOF\n"))
        yield self.at_instruction(ctx, ins, "will break", fix)


class _SwallowsNextLine(Rule):
    """Edits only the FROM line, but its trailing escape joins the next instruction into it."""

    code = "T002"
    name = "swallows-next-line"
    summary = "test rule"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        first = ctx.document.instructions[0]
        end = first.args_end
        if ctx.document.source[end - 1] != "\\":
            yield self.at_instruction(ctx, first, "x", self.make_fix("x", Edit(end, end, " \\")))


class _RefusesOwnResult(Rule):
    code = "T003"
    name = "own-invariant"
    summary = "test rule"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        for ins in ctx.document.instructions:
            if ins.name == "RUN" and "hi" in ins.args:
                start = ctx.document.source.index("hi", ins.start)
                yield self.at_instruction(ctx, ins, "x", self.make_fix("x", Edit(start, start + 2, "ho")))

    def verify(self, before: Document, after: Document) -> str | None:
        return "the rule's invariant does not hold"


class _AppendsCounter(Rule):
    """Each round adds one ``RUN true`` until there are three: needs several rounds."""

    code = "T004"
    name = "grows"
    summary = "test rule"
    fix_safety = FixSafety.UNSAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        doc = ctx.document
        if sum(1 for i in doc.instructions if i.args == "true") < 3:
            last = doc.instructions[-1]
            yield self.at_instruction(ctx, last, "grow", self.make_fix("grow", Edit(last.end, last.end, "RUN true\n")))


class _ReachesForTheFrom(Rule):
    """Reports the RUN but rewrites the FROM line."""

    code = "T005"
    name = "reaches-further"
    summary = "test rule"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        first, last = ctx.document.instructions[0], ctx.document.instructions[-1]
        if first.args == "a":
            fix = self.make_fix("x", Edit(first.args_end - 1, first.args_end, "b"))
            yield self.at_instruction(ctx, last, "x", fix)


class _RestructuresTheFile(_ReachesForTheFrom):
    code = "T006"
    fix_scope = FixScope.DOCUMENT


def test_a_fix_may_only_edit_the_instructions_its_finding_names_unless_its_rule_restructures() -> None:
    confined = run("FROM a\nRUN echo hi\n", [_ReachesForTheFrom()])
    assert not confined.changed
    assert confined.rejected[0].reason == "the fix edits instructions its finding does not name"
    assert run("FROM a\nRUN echo hi\n", [_RestructuresTheFile()]).output == "FROM b\nRUN echo hi\n"


def test_a_fix_that_breaks_syntax_is_dropped_and_reported() -> None:
    result = run("FROM a\nRUN echo hi\n", [_BreaksSyntax()])
    assert result.output == "FROM a\nRUN echo hi\n"
    assert len(result.rejected) == 1
    assert "does not parse" in result.rejected[0].reason
    assert "unterminated heredoc" in result.rejected[0].reason


def test_a_fix_that_changes_other_instructions_is_dropped() -> None:
    result = run("FROM a\nRUN echo one\n", [_SwallowsNextLine()])
    assert not result.changed
    assert "changed instructions it did not mean to touch" in result.rejected[0].reason


def test_a_rule_invariant_failure_is_dropped() -> None:
    result = run("FROM a\nRUN echo hi\n", [_RefusesOwnResult()])
    assert not result.changed and result.rejected[0].reason == "the rule's invariant does not hold"


def test_unsafe_fixes_need_opting_in_and_run_to_a_fixed_point() -> None:
    assert not run("FROM a\n", [_AppendsCounter()]).changed
    result = run("FROM a\n", [_AppendsCounter()], unsafe_fixes=True)
    assert result.output == "FROM a\nRUN true\nRUN true\nRUN true\n"
    assert len(result.fixed) == 3 and not result.remaining


def test_touched_spans_are_in_input_coordinates_and_the_rest_is_kept() -> None:
    text = "from a\n# keep me\nrun echo hi\nCOPY . /app\n"
    result = run(text, all_rules())
    assert result.output == "FROM a\n# keep me\nRUN echo hi\nCOPY . /app\n"
    assert sorted(result.touched) == [(0, 4), (17, 20)]
    assert run(result.output, all_rules()).output == result.output


def test_overlapping_fixes_wait_for_the_next_round() -> None:
    result = run("maintainer me\nfrom a\n", all_rules(), unsafe_fixes=True)
    assert result.output == 'LABEL maintainer="me"\nFROM a\n'
    assert {f.code for f in result.fixed} == {"DO100", "DO101"}
