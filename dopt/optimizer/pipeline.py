"""The engine: run rules, apply their fixes to a fixed point, and verify every rewrite.

Each round collects the findings of all selected rules on the current text, applies the fixes
that the user allows, one at a time from the end of the file towards the start (so the offsets of
the fixes still to apply stay valid), and checks each rewrite before keeping it:

* the new text still parses as BuildKit parses it;
* every instruction the fix did not touch means exactly what it meant before (same BuildKit dump);
* the rule's own invariant holds (``Rule.verify``).

A fix that fails any check is dropped and reported, never written. Rounds repeat until no fix
applies (later fixes often become possible only after earlier ones), with a bound as a guard
against two rules undoing each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopt.optimizer.rules import Context, Edit, Finding, Fix, FixSafety, FixScope, Rule
from dopt.optimizer.suppression import Suppressions
from dopt.optimizer.syntax import DockerfileSyntaxError, Document, Instruction, parse

MAX_ROUNDS = 25


@dataclass(frozen=True)
class RejectedFix:
    """A fix that a rule proposed but verification refused."""

    finding: Finding
    reason: str


@dataclass
class Result:
    """What a run produced: the final text, what was fixed, what remains, what was refused."""

    source: str
    output: str
    fixed: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    rejected: list[RejectedFix] = field(default_factory=list)
    # Source ranges of the input that applied fixes replaced: everything else is kept byte for byte.
    touched: list[tuple[int, int]] = field(default_factory=list)
    _applied: list[Edit] = field(default_factory=list, repr=False)

    def _record(self, fix: Fix) -> None:
        """Remember ``fix`` (offsets in the text it was applied to) in input coordinates."""
        for edit in sorted(fix.edits, key=lambda e: e.start, reverse=True):
            start, end = edit.start, edit.end
            for earlier in reversed(self._applied):
                start, end = _to_before(earlier, start), _to_before(earlier, end, at_end=True)
            self.touched.append((start, end))
        # Edits of one fix are applied from the end, so each sees offsets unaffected by the others.
        self._applied.extend(sorted(fix.edits, key=lambda e: e.start, reverse=True))

    @property
    def changed(self) -> bool:
        return self.output != self.source


def collect(
    doc: Document,
    rules: Sequence[Rule],
    *,
    path: str = "Dockerfile",
    context_dir: Path | None = None,
    options: dict[str, Any] | None = None,
) -> list[Finding]:
    """All findings of ``rules`` on ``doc`` that are not suppressed by inline comments, in file order."""
    ctx = Context(doc, path, context_dir, options or {})
    suppressions = Suppressions.of(doc)
    findings: list[Finding] = []
    for rule in rules:
        for finding in rule.check(ctx):
            if not suppressions.suppresses(rule, finding):
                findings.append(finding)
    findings.sort(key=lambda f: (f.start, f.code))
    return findings


def run(
    source: str,
    rules: Sequence[Rule],
    *,
    fix: bool = True,
    unsafe_fixes: bool = False,
    path: str = "Dockerfile",
    context_dir: Path | None = None,
    options: dict[str, Any] | None = None,
) -> Result:
    """Check ``source`` and, with ``fix``, rewrite it. Raises DockerfileSyntaxError on bad input."""
    doc = parse(source)
    result = Result(source=source, output=source)
    by_code = {rule.code: rule for rule in rules}
    refused: set[tuple[str, str]] = set()  # (code, text) pairs already refused: do not retry them
    for _ in range(MAX_ROUNDS if fix else 1):
        findings = collect(doc, rules, path=path, context_dir=context_dir, options=options)
        applicable = [
            f
            for f in findings
            if fix
            and f.fix is not None
            and _allowed(f.fix, unsafe_fixes)
            and (f.code, doc.source[f.fix.start : f.fix.end]) not in refused
        ]
        if not applicable:
            result.remaining = findings
            break
        applied_any = False
        for finding in _non_overlapping(applicable):
            assert finding.fix is not None
            problem, new_doc = verify_fix(doc, finding, by_code[finding.code])
            if problem is not None or new_doc is None:
                refused.add((finding.code, doc.source[finding.fix.start : finding.fix.end]))
                result.rejected.append(RejectedFix(finding, problem or "did not parse"))
                continue
            doc = new_doc
            result.fixed.append(finding)
            result._record(finding.fix)
            applied_any = True
        if not applied_any:
            result.remaining = collect(doc, rules, path=path, context_dir=context_dir, options=options)
            break
    else:
        result.remaining = collect(doc, rules, path=path, context_dir=context_dir, options=options)
    result.output = doc.source
    return result


def _to_before(edit: Edit, offset: int, *, at_end: bool = False) -> int:
    """Map an offset in the text after ``edit`` to the text before it (inserted text maps onto the edit)."""
    if offset < edit.start or (offset == edit.start and not at_end):
        return offset
    inserted_end = edit.start + len(edit.text)
    if offset >= inserted_end and not (offset == inserted_end and at_end):
        return offset - len(edit.text) + (edit.end - edit.start)
    return edit.end if at_end else edit.start


def _allowed(fix: Fix, unsafe_fixes: bool) -> bool:
    return fix.safety is FixSafety.SAFE or unsafe_fixes


def _non_overlapping(findings: Iterable[Finding]) -> list[Finding]:
    """Fixes to apply this round, last in the file first; overlapping ones wait for the next round."""
    chosen: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for finding in sorted(findings, key=lambda f: (f.fix.start, f.fix.end) if f.fix else (0, 0)):
        assert finding.fix is not None
        start, end = finding.fix.start, finding.fix.end
        if any(start <= t_end and t_start <= end for t_start, t_end in taken):
            continue
        taken.append((start, end))
        chosen.append(finding)
    return sorted(chosen, key=lambda f: f.fix.start if f.fix else 0, reverse=True)


def _apply(source: str, fix: Fix) -> str:
    out = source
    for edit in sorted(fix.edits, key=lambda e: e.start, reverse=True):
        out = out[: edit.start] + edit.text + out[edit.end :]
    return out


def _untouched(doc: Document, spans: Sequence[tuple[int, int]]) -> list[str]:
    """BuildKit dumps of the instructions that no span touches."""

    def touched(ins: Instruction) -> bool:
        return any(start <= ins.end and ins.start <= end for start, end in spans)

    return [ins.dump() for ins in doc.instructions if not touched(ins)]


def _finding_region(doc: Document, finding: Finding) -> tuple[int, int]:
    """From the first to the last instruction the finding covers (the finding itself when it covers none)."""
    end = max(finding.end, finding.start + 1)
    covered = [ins for ins in doc.instructions if ins.start < end and finding.start < ins.end]
    if not covered:
        return finding.start, finding.end
    return covered[0].start, covered[-1].end


def verify_fix(before: Document, finding: Finding, rule: Rule | None) -> tuple[str | None, Document | None]:
    """Apply ``finding``'s fix to ``before`` and check the rewrite; (problem, None) or (None, new document)."""
    fix = finding.fix
    assert fix is not None
    if rule is not None and rule.fix_scope is FixScope.FINDING:
        start, end = _finding_region(before, finding)
        if any(e.start < start or e.end > end for e in fix.edits):
            return "the fix edits instructions its finding does not name", None
    try:
        after = parse(_apply(before.source, fix))
    except DockerfileSyntaxError as err:
        return f"the rewrite does not parse: {err}", None
    old_spans = [(e.start, e.end) for e in fix.edits]
    new_spans = []
    shift = 0
    for edit in sorted(fix.edits, key=lambda e: e.start):
        new_start = edit.start + shift
        new_spans.append((new_start, new_start + len(edit.text)))
        shift += len(edit.text) - (edit.end - edit.start)
    if _untouched(before, old_spans) != _untouched(after, new_spans):
        return "the rewrite changed instructions it did not mean to touch", None
    problem = rule.verify(before, after) if rule is not None else None
    if problem:
        return problem, None
    return None, after
