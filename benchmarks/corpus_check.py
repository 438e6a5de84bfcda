"""Robustness check of ``dopt fix`` over a folder of real-world Dockerfiles.

The project promises that ``dopt`` never crashes, never writes a file BuildKit rejects, reaches a
fixed point in one run, and changes nothing but the instructions its rules fixed. Unit tests
check this on hand-picked cases; this script checks it on whatever corpus you point it at
(thousands of files from public repositories), because real files hold the combinations nobody
thinks of. For every file it runs the library's ``fix_source`` twice (safe fixes only, and with
unsafe fixes) and counts:

``tracebacks``
    an exception other than a clean ``DockerfileSyntaxError`` on input BuildKit also rejects;
``syntax_error_on_valid_input``
    a ``DockerfileSyntaxError`` on input BuildKit accepts;
``output_rejected``
    a fixed output BuildKit (or dopt itself) rejects, for an input BuildKit accepts;
``second_pass_changes``
    ``fix(fix(x)) != fix(x)``;
``bytes_changed_outside_fixes``
    a fix that changes a line of an instruction with no applied finding in its line range, or
    a comment or blank line, or an output that is not the applied fixes' edits (the fixes are
    replayed line by line: lines a fix rewrites with the same bytes do not count);
``input_disagreement``
    dopt and BuildKit read different instruction lists from the input (keyword, flags, values,
    JSON form, lines, heredocs), or one rejects what the other accepts;
``timeouts``
    a file that takes longer than ``--timeout`` seconds.

BuildKit is the PyPI ``dockerfile`` package (BuildKit's parser compiled as an extension), read
through ``tests/oracle.py``. Two differences of that parser's BuildKit version from current
BuildKit are known and counted apart, not as failures: ``<< EOF`` (a blank after ``<<``) is a
heredoc only in current BuildKit, and ``CMD ["a"] x`` (a JSON array followed by more text) was
JSON form in older BuildKit and is shell form now.

It also reports fixes dopt's own verification refused (not failures: the pipeline caught them)
and, with ``--minimize``, reduces one file per distinct failure (kind, mode, rule) to the fewest
lines that still fail, for a bug report.

Usage: ``python benchmarks/corpus_check.py FOLDER... [--jobs N] [--json] [--minimize] [--select DO200]``.
Exit status 1 when any file fails.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAILURE_KINDS = (
    "tracebacks",
    "syntax_error_on_valid_input",
    "output_rejected",
    "second_pass_changes",
    "bytes_changed_outside_fixes",
    "input_disagreement",
    "timeouts",
)
MODES = ("safe", "unsafe")
_FIELDS = ("keyword", "sub keyword", "json form", "original", "start line", "end line", "flags", "values", "heredocs")


@dataclass
class Failure:
    """One thing wrong with one file, in one fix mode (or ``input`` for reading it)."""

    kind: str
    mode: str
    reason: str
    code: str | None = None  # the rule whose fix is at fault, when known


@dataclass
class FileReport:
    """What happened to one file."""

    path: str
    failures: list[Failure] = field(default_factory=list)
    rejected_input: bool = False  # dopt and BuildKit both reject it: nothing more to check
    known_oracle_difference: str | None = None
    skipped_oracle: str | None = None  # why the BuildKit comparison could not be made
    fixed: dict[str, int] = field(default_factory=dict)  # findings fixed, per mode
    changed: dict[str, bool] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # "CODE: reason" of fixes dopt's own verification refused
    seconds: float = 0.0


class _Timeout(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Loaded once per worker process.

_STATE: dict[str, Any] = {}


def _load(all_rules: bool, select: tuple[str, ...] = ()) -> None:
    """Import dopt and the oracle helper (``tests/oracle.py``, importable once tests/ is on the path)."""
    if _STATE:
        return
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import oracle

    from dopt.optimizer.api import fix_source
    from dopt.optimizer.config import Settings
    from dopt.optimizer.rules import FixScope
    from dopt.optimizer.syntax import DockerfileSyntaxError, decode, parse
    from dopt.transforms import all_rules as every_rule

    _STATE.update(
        restructuring={r.code for r in every_rule() if r.fix_scope is FixScope.DOCUMENT},
        oracle=oracle,
        fix_source=fix_source,
        settings=Settings(select=select or ("ALL",)) if all_rules or select else Settings(),
        syntax_error=DockerfileSyntaxError,
        decode=decode,
        parse=parse,
    )


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


# ---------------------------------------------------------------------------------------------
# The checks.


def _short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_disagreement(ours: list[tuple], theirs: list[tuple]) -> str:
    if len(ours) != len(theirs):
        return f"dopt reads {len(ours)} instructions, BuildKit {len(theirs)}"
    for mine, other in zip(ours, theirs, strict=True):
        if mine != other:
            names = [n for n, a, b in zip(_FIELDS, mine, other, strict=True) if a != b]
            i = _FIELDS.index(names[0])
            return f"line {other[4]}: {', '.join(names)} differ: dopt {_short(mine[i])} vs BuildKit {_short(other[i])}"
    return "instruction lists differ"


def _oracle(text: str) -> tuple[list[tuple] | None, str | None]:
    """BuildKit's view of ``text``, or None and the reason it rejects it."""
    try:
        return _STATE["oracle"].buildkit_view(text), None
    except Exception as err:  # the extension raises GoParseError, a ValueError; be broad on odd input
        return None, f"{type(err).__name__}: {err}"


def _outside_changes(source: str, result: Any) -> tuple[str | None, str] | None:
    """Replay the applied fixes on ``source`` and say where one reached beyond what its rule may change.

    A fix may change the instructions its finding names; a restructuring rule's fix (fix scope
    DOCUMENT: merging RUNs, moving an install, splitting stages) also the instructions its edits
    cover, and it may drop the blank lines inside what it rewrites. Comments and directives must
    stay: only a restructuring fix may move one, and then its text must come back verbatim. Each
    fix is judged against the text it was applied to (the pipeline applies fixes one at a time,
    from the end of the file, so each finding's offsets hold in the text of the replay so far).
    """
    from dopt.optimizer.syntax import Instruction

    if _STATE["parse"](source).render() != source:
        return None, "the syntax tree does not print the input back byte for byte"
    text = source
    for finding in result.fixed:
        fix = finding.fix
        nodes = _STATE["parse"](text).nodes
        restructures = finding.code in _STATE["restructuring"]
        reach = [(finding.start, max(finding.end, finding.start + 1))]
        if restructures:
            reach += [(e.start, max(e.end, e.start + 1)) for e in fix.edits]
        allowed = {
            id(n) for n in nodes if isinstance(n, Instruction) and any(n.start < b and a < n.end for a, b in reach)
        }
        for edit in fix.edits:  # the edits of one fix do not overlap: each is judged on the text before the fix
            for a, b, _ in _changed_parts(text, edit.start, edit.end, edit.text):
                for node in nodes:
                    # An insertion between two nodes touches neither; one inside a node touches it.
                    hit = node.start < a < node.end if a == b else a < node.end and node.start < b
                    if not hit or id(node) in allowed or (restructures and _kept(text, node, edit)):
                        continue
                    what, why = f"{node.kind} line {node.line}", "must stay"
                    if isinstance(node, Instruction):
                        what, why = f"instruction {node.name} at line {node.line}", "holds no applied finding"
                    description = f"{finding.code} fix for line {finding.line} ({fix.description!r})"
                    return finding.code, f"{description} changed the {what}, which {why}"
        for edit in sorted(fix.edits, key=lambda e: e.start, reverse=True):
            text = text[: edit.start] + edit.text + text[edit.end :]
    if text != result.output:
        return None, "the output is not the result of the applied fixes' edits"
    return None


def _kept(text: str, node: Any, edit: Any) -> bool:
    """Whether a restructuring edit keeps this comment or directive (verbatim, maybe moved), or
    drops a blank line from inside the region it rewrites."""
    if node.kind == "blank":
        return edit.start <= node.start and node.end <= edit.end
    line = text[node.start : node.end].rstrip("\r\n")
    old = text[edit.start : edit.end].splitlines()
    new = edit.text.splitlines()
    return new.count(line) >= old.count(line)


def _changed_parts(text: str, start: int, end: int, new: str) -> list[tuple[int, int, str]]:
    """The parts of ``text[start:end]`` that replacing it by ``new`` really changes, line by line.

    Fixes often replace a whole region and write most of it back unchanged (blank lines, the
    instructions between the ones they rewrite); only the lines that differ count as changed.
    Returns (start, end, replacement) in file order; start == end is an insertion at a line boundary.
    """
    old_lines = text[start:end].splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    offsets = [start]
    for line in old_lines:
        offsets.append(offsets[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    return [
        (offsets[i1], offsets[i2], "".join(new_lines[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def examine(text: str, path: str = "Dockerfile", *, modes: Sequence[str] = MODES, settings: Any = None) -> FileReport:
    """Run every check on one Dockerfile's text (the checks are described in the module docstring)."""
    report = FileReport(path)
    parse = _STATE["parse"]
    fix_source = _STATE["fix_source"]
    syntax_error = _STATE["syntax_error"]
    oracle = _STATE["oracle"]
    settings = settings or _STATE["settings"]

    has_surrogates = any("\udc80" <= ch <= "\udcff" for ch in text)
    theirs, oracle_error = (None, "not UTF-8: the oracle takes text only") if has_surrogates else _oracle(text)
    if has_surrogates:
        report.skipped_oracle = oracle_error
    try:
        doc = parse(text)
    except syntax_error as err:
        if theirs is None:
            report.rejected_input = True
        else:
            report.failures.append(Failure("syntax_error_on_valid_input", "input", f"dopt: {err}"))
        return report
    except _Timeout:
        raise
    except Exception as err:
        report.failures.append(Failure("tracebacks", "input", f"parse: {_exception(err)}"))
        return report

    known = oracle.known_difference(text, doc)
    if not has_surrogates:
        if theirs is None:
            reason = f"dopt accepts the input, BuildKit rejects it ({oracle_error})"
            if known:
                report.known_oracle_difference = known
            else:
                report.failures.append(Failure("input_disagreement", "input", reason))
        else:
            ours = oracle.dopt_view(doc)
            if ours != theirs:
                if known:
                    report.known_oracle_difference = known
                else:
                    report.failures.append(Failure("input_disagreement", "input", _describe_disagreement(ours, theirs)))

    for mode in modes:
        unsafe = mode == "unsafe"
        try:
            result = fix_source(text, path=path, unsafe_fixes=unsafe, settings=settings)
        except _Timeout:
            raise
        except Exception as err:
            report.failures.append(Failure("tracebacks", mode, f"fix: {_exception(err)}"))
            continue
        report.fixed[mode] = len(result.fixed)
        report.changed[mode] = result.changed
        report.refused += [f"{r.finding.code} ({mode}) line {r.finding.line}: {r.reason}" for r in result.rejected]
        output = result.output
        if result.changed and theirs is not None and not has_surrogates:
            _, out_error = _oracle(output)
            if out_error:
                report.failures.append(Failure("output_rejected", mode, f"BuildKit rejects the output: {out_error}"))
        try:
            again = fix_source(output, path=path, unsafe_fixes=unsafe, settings=settings)
        except syntax_error as err:
            report.failures.append(Failure("output_rejected", mode, f"dopt rejects its own output: {err}"))
            continue
        except _Timeout:
            raise
        except Exception as err:
            report.failures.append(Failure("tracebacks", mode, f"second pass: {_exception(err)}"))
            continue
        if again.output != output:
            codes = ",".join(sorted({f.code for f in again.fixed})) or None
            where = _first_diff(output, again.output)
            report.failures.append(
                Failure("second_pass_changes", mode, f"a second run fixes more ({codes}): {where}", codes)
            )
        try:
            outside = _outside_changes(text, result)
        except _Timeout:
            raise
        except Exception as err:
            outside = None, f"could not replay the fixes: {_exception(err)}"
        if outside:
            report.failures.append(Failure("bytes_changed_outside_fixes", mode, outside[1], outside[0]))
    return report


def _exception(err: BaseException) -> str:
    """``Type: message at file:line in function``, the innermost frame, so the owner knows where to look."""
    frames = traceback.extract_tb(err.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {_relative(last.filename)}:{last.lineno} in {last.name}"
    return f"{type(err).__name__}: {err}{where}"


def _relative(filename: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(REPO))
    except ValueError:
        return filename


def _first_diff(a: str, b: str) -> str:
    """The first differing line of two texts, for a one-line reason."""
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"line {i + 1}: {_short(x, 70)} -> {_short(y, 70)}"
    return f"line {min(len(la), len(lb)) + 1}: line count {len(la)} -> {len(lb)}"


def _check_path(job: tuple[str, float]) -> FileReport:
    path, timeout = job
    started = time.perf_counter()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return FileReport(path, [Failure("tracebacks", "input", f"cannot read: {err}")])
    try:
        text = _STATE["decode"](data)
    except _STATE["syntax_error"] as err:
        report = FileReport(path)
        report.rejected_input = True
        report.skipped_oracle = f"dopt refuses to decode it: {err}"
        return report
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        report = examine(text, path)
    except _Timeout:
        report = FileReport(path, [Failure("timeouts", "any", f"took longer than {timeout:g} s")])
    except Exception as err:  # examine catches dopt's exceptions; this is a bug of this script
        report = FileReport(path, [Failure("tracebacks", "checker", f"{type(err).__name__}: {err}")])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------------------------
# Minimisation: the smallest set of lines that still shows the same failure.


def minimize(text: str, predicate: Callable[[str], bool], budget_s: float = 20.0) -> str:
    """Delta debugging over lines: drop chunks of lines while ``predicate`` still holds."""
    deadline = time.monotonic() + budget_s
    lines = text.splitlines(keepends=True)
    chunk = max(len(lines) // 2, 1)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        reduced = False
        while i < len(lines) and time.monotonic() < deadline:
            candidate = lines[:i] + lines[i + chunk :]
            if candidate and predicate("".join(candidate)):
                lines = candidate
                reduced = True
            else:
                i += chunk
        if not reduced:
            chunk //= 2
    return "".join(lines)


def _same_failure(text: str, kind: str, mode: str, code: str | None) -> Callable[[str], bool]:
    """Whether a candidate still fails the same way; with the faulty rule alone when that suffices (faster)."""
    from dopt.optimizer.config import Settings

    def predicate_with(settings: Any) -> Callable[[str], bool]:
        def predicate(candidate: str) -> bool:
            modes = (mode,) if mode in MODES else MODES
            try:
                report = examine(candidate, modes=modes, settings=settings)
            except Exception:
                return False
            return any(f.kind == kind and f.mode == mode and f.code == code for f in report.failures)

        return predicate

    if code and "," not in code:
        alone = predicate_with(Settings(select=(code,)))
        if alone(text):
            return alone
    return predicate_with(None)


# ---------------------------------------------------------------------------------------------


def find_dockerfiles(folders: Sequence[str]) -> list[Path]:
    """Every file dopt would pick up in ``folders`` (its own discovery rules), sorted."""
    from dopt.cli import discover

    found = sorted({path for path, problem in discover(folders) if not problem})
    return found


def _run_all(
    paths: list[Path], jobs: int, timeout: float, all_rules: bool, select: tuple[str, ...]
) -> Iterator[FileReport]:
    work = [(str(p), timeout) for p in paths]
    if jobs <= 1 or len(work) < 20:
        _load(all_rules, select)
        yield from map(_check_path, work)
        return
    ctx = get_context("fork")
    with ctx.Pool(jobs, initializer=_load, initargs=(all_rules, select)) as pool:
        yield from pool.imap_unordered(_check_path, work, chunksize=8)


def summarize(reports: list[FileReport], elapsed: float, folders: Sequence[str], rules: str) -> dict[str, Any]:
    """The machine-readable result (what ``--json`` prints)."""
    counts: Counter[str] = Counter()
    for r in reports:
        for kind in {f.kind for f in r.failures}:
            counts[kind] += 1
    failing = [r for r in reports if r.failures]
    by_rule: Counter[str] = Counter()
    for r in reports:
        for kind, code in {(f.kind, f.code) for f in r.failures if f.code}:
            by_rule[f"{kind} {code}"] += 1
    return {
        "folders": list(folders),
        "rules": rules,
        "files": len(reports),
        "failed_files": len(failing),
        "failures_by_kind": {kind: counts.get(kind, 0) for kind in FAILURE_KINDS},
        "failures_by_rule": dict(by_rule.most_common()),
        "rejected_inputs": sum(r.rejected_input for r in reports),
        "known_oracle_differences": sum(r.known_oracle_difference is not None for r in reports),
        "oracle_skipped": sum(r.skipped_oracle is not None and not r.rejected_input for r in reports),
        "fixed_findings": {m: sum(r.fixed.get(m, 0) for r in reports) for m in MODES},
        "changed_files": {m: sum(r.changed.get(m, False) for r in reports) for m in MODES},
        "refused_fixes": sum(len(r.refused) for r in reports),
        "refused_by_file": [{"path": r.path, "refused": r.refused} for r in reports if r.refused],
        "elapsed_s": round(elapsed, 3),
        "files_per_second": round(len(reports) / elapsed, 1) if elapsed > 0 else None,
        "slowest": [
            {"path": r.path, "seconds": round(r.seconds, 3)} for r in sorted(reports, key=lambda r: -r.seconds)[:5]
        ],
        "failures": [{"path": r.path, "failures": [asdict(f) for f in r.failures]} for r in failing],
        "known_differences": [
            {"path": r.path, "reason": r.known_oracle_difference} for r in reports if r.known_oracle_difference
        ][:200],
    }


def _print_human(summary: dict[str, Any], show: int) -> None:
    out = sys.stdout.write
    out(f"dopt corpus check: {summary['files']} files from {', '.join(summary['folders'])} "
        f"({summary['rules']} rules, safe and unsafe fixes) in {summary['elapsed_s']:.1f} s "
        f"({summary['files_per_second']} files/s)\n")  # fmt: skip
    out(f"  fixed findings: safe {summary['fixed_findings']['safe']}, unsafe {summary['fixed_findings']['unsafe']}; "
        f"changed files: safe {summary['changed_files']['safe']}, unsafe {summary['changed_files']['unsafe']}; "
        f"fixes refused by verification: {summary['refused_fixes']}\n")  # fmt: skip
    out(f"  inputs both dopt and BuildKit reject: {summary['rejected_inputs']}; "
        f"known oracle version differences: {summary['known_oracle_differences']}; "
        f"BuildKit comparison skipped: {summary['oracle_skipped']}\n")  # fmt: skip
    for example in summary["refused_by_file"][:5]:
        out(f"    refused in {example['path']}: {'; '.join(example['refused'])}\n")
    out("  failures by kind (files):\n")
    for kind, n in summary["failures_by_kind"].items():
        out(f"    {kind:30} {n}\n")
    if summary["failures_by_rule"]:
        out("  failures by kind and rule (files):\n")
        for name, n in summary["failures_by_rule"].items():
            out(f"    {name:30} {n}\n")
    out(f"  failing files: {summary['failed_files']}\n")
    for entry in summary["failures"][:show]:
        out(f"\n  {entry['path']}\n")
        for f in entry["failures"]:
            out(f"    [{f['kind']}/{f['mode']}] {f['reason']}\n")
    for item in summary.get("minimal_reproductions", []):
        out(f"\n  minimal reproduction of [{item['kind']}/{item['mode']}] {item['code'] or ''} from {item['path']}:\n")
        for line in item["text"].splitlines() or [""]:
            out(f"    | {line}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check dopt fix over a corpus of Dockerfiles.")
    parser.add_argument("folders", nargs="+", help="folders (or files) holding Dockerfiles")
    parser.add_argument("--jobs", "-j", type=int, default=min(os.cpu_count() or 1, 2), help="worker processes")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per file")
    parser.add_argument("--rules", choices=("all", "default"), default="all",
                        help="every rule including opt-in ones (default), or the default selection")  # fmt: skip
    parser.add_argument("--select", default="", help="only these rules (comma-separated codes or prefixes)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--show", type=int, default=10, help="failing files to list in the text output")
    parser.add_argument("--minimize", action="store_true",
                        help="reduce one file per distinct failure to the fewest lines that still fail")  # fmt: skip
    parser.add_argument("--progress", action="store_true", help="report progress on stderr (default on a terminal)")
    args = parser.parse_args(argv)

    all_rules = args.rules == "all"
    select = tuple(code.strip() for code in args.select.split(",") if code.strip())
    paths = find_dockerfiles(args.folders)
    started = time.perf_counter()
    reports = []
    show_progress = args.progress or sys.stderr.isatty()
    for done, report in enumerate(_run_all(paths, args.jobs, args.timeout, all_rules, select), 1):
        reports.append(report)
        if show_progress and (done % 100 == 0 or done == len(paths)):
            failing = sum(bool(r.failures) for r in reports)
            sys.stderr.write(f"corpus_check: {done}/{len(paths)} files, {failing} failing\n")
    reports.sort(key=lambda r: r.path)
    elapsed = time.perf_counter() - started
    summary = summarize(reports, elapsed, args.folders, ",".join(select) or args.rules)

    minimized: dict[tuple[str, str, str, str | None], str] = {}  # (path, kind, mode, code) -> text
    if args.minimize:
        _load(all_rules, select)
        # One file per distinct failure (kind, mode, rule): many files usually share one cause.
        seen: set[tuple[str, str, str | None]] = set()
        for entry in summary["failures"]:
            for failure in entry["failures"]:
                signature = (failure["kind"], failure["mode"], failure["code"])
                if failure["kind"] == "timeouts" or signature in seen or len(seen) >= args.show:
                    continue
                seen.add(signature)
                if show_progress:
                    sys.stderr.write(f"corpus_check: minimizing {entry['path']} ({', '.join(map(str, signature))})\n")
                text = _STATE["decode"](Path(entry["path"]).read_bytes())
                minimized[(entry["path"], *signature)] = minimize(text, _same_failure(text, *signature))
        summary["minimal_reproductions"] = [
            {"path": path, "kind": kind, "mode": mode, "code": code, "text": text}
            for (path, kind, mode, code), text in minimized.items()
        ]

    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_human(summary, args.show)
    return 1 if summary["failed_files"] else 0


if __name__ == "__main__":
    sys.exit(main())
