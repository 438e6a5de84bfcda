"""The benchmark and the corpus check run and report in the shape other tools read.

Speed is never asserted here (a shared or slow machine would make such a test flaky); these
tests only make sure that ``benchmarks/bench.py`` and ``benchmarks/corpus_check.py`` keep
working as dopt changes, that their JSON has the documented keys, and that the corpus check
really notices the failures it counts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name: str) -> ModuleType:
    """Import a script from benchmarks/ (not a package) by path."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    key = f"_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up while the class is being built
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_generated_corpus_is_deterministic(tmp_path: Path) -> None:
    corpus = _module("dockerfile_corpus")
    first = [p.read_bytes() for p in corpus.generate(tmp_path / "a", 25, seed=7)]
    second = [p.read_bytes() for p in corpus.generate(tmp_path / "b", 25, seed=7)]
    assert first == second
    assert len(set(first)) > 20  # varied, not one template repeated


def test_quick_benchmark_emits_json_with_every_section() -> None:
    done = _run(str(BENCHMARKS / "bench.py"), "--quick", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"cpu", "logical_cores", "python", "load_average_at_start"} <= result["machine"].keys()
    assert result["corpus"]["generated"] is True and result["corpus"]["files"] > 0
    library = result["library"]
    assert "error" not in library, library
    for phase in ("parse", "check", "fix"):
        assert {"files_per_s", "files_per_cpu_s", "seconds", "syntax_errors"} <= library[phase].keys()
        assert library[phase]["syntax_errors"] == 0  # the generated corpus is valid Dockerfiles
    assert library["peak_rss_mb"] > 0
    for command in ("fix --diff", "check"):
        row = result["cli_batch"][command]
        assert {"files_per_s", "peak_rss_mb", "exit_codes"} <= row.keys()
        assert set(row["exit_codes"]) <= {0, 1}  # findings at most, never an error
    assert {"median_s", "min_s", "runs"} <= result["latency"]["dopt fix --diff"].keys()
    for tool in ("hadolint", "tally"):
        assert result["tools"][tool]["available"] is False and "skipped" in result["tools"][tool]["reason"]
    assert {"batch fix files/s", "single-file fix --diff vs tally"} <= result["targets"].keys()
    assert result["targets"]["single-file fix --diff vs tally"]["met"] is None  # no tally in --quick


def test_a_missing_tool_is_reported_not_fatal() -> None:
    available, reason = _module("bench").ensure_tool("no-such-linter-here", install=False)
    assert available is None and "not installed" in reason


def test_corpus_check_reports_json_and_exit_status(tmp_path: Path) -> None:
    _module("dockerfile_corpus").generate(tmp_path / "corpus", 12)
    bad = tmp_path / "corpus" / "rejected" / "Dockerfile"
    bad.parent.mkdir()
    bad.write_text("FROM a\nENV ONLYKEY\n")  # BuildKit rejects it as well: counted, not a failure
    done = _run(str(BENCHMARKS / "corpus_check.py"), str(tmp_path / "corpus"), "--json", "--jobs", "1")
    summary = json.loads(done.stdout)
    assert done.returncode == (1 if summary["failed_files"] else 0), done.stderr
    assert summary["files"] == 13
    assert summary["rejected_inputs"] == 1
    assert set(summary["failures_by_kind"]) == {
        "tracebacks", "syntax_error_on_valid_input", "output_rejected", "second_pass_changes",
        "bytes_changed_outside_fixes", "input_disagreement", "timeouts",
    }  # fmt: skip
    assert {"fixed_findings", "changed_files", "refused_fixes", "failures", "files_per_second"} <= summary.keys()


# ---------------------------------------------------------------------------------------------
# The corpus check's detectors, on fixes planted in place of dopt's.


@pytest.fixture
def check() -> ModuleType:
    module = _module("corpus_check")
    module._load(True)
    return module


SOURCE = "FROM a\n# keep me\nrun echo hi\nRUN echo there\n"


def _planted(check: ModuleType, rewrite):  # type: ignore[no-untyped-def]
    from dopt.optimizer.pipeline import Result

    def fix_source(text: str, **_: object) -> Result:
        return rewrite(text, Result) if text == SOURCE else Result(text, text)

    return fix_source


def _finding(start: int, end: int, *edits: tuple[int, int, str], code: str = "DO999"):  # type: ignore[no-untyped-def]
    from dopt.optimizer.rules import Edit, Finding, Fix, FixSafety

    fix = Fix(tuple(Edit(*e) for e in edits), FixSafety.SAFE, "planted")
    return Finding(code, "planted", "m", start, end, 3, 1, 3, 4, fix)


def _kinds(check: ModuleType, text: str = SOURCE) -> set[str]:
    return {f.kind for f in check.examine(text).failures}


def test_corpus_check_sees_an_edit_beyond_the_finding(check: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    run, other = SOURCE.index("run"), SOURCE.index("RUN echo there")

    def rewrite(text, result_type):  # type: ignore[no-untyped-def]
        out = text[:run] + "RUN" + text[run + 3 : other] + "CMD" + text[other + 3 :]
        return result_type(text, out, fixed=[_finding(run, run + 3, (run, run + 3, "RUN"), (other, other + 3, "CMD"))])

    monkeypatch.setitem(check._STATE, "fix_source", _planted(check, rewrite))
    assert _kinds(check) == {"bytes_changed_outside_fixes"}


def test_corpus_check_lets_a_restructuring_rule_edit_what_its_fix_covers(
    check: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DO200 (merge RUNs) reports the second RUN of a chain and rewrites the first one too; the
    # comment between them may move, verbatim, but not disappear.
    comment = SOURCE.index("# keep")
    other = SOURCE.index("RUN echo there")
    merged = "run echo hi && echo there\n# keep me\n"

    def moves(text, result_type):  # type: ignore[no-untyped-def]
        found = _finding(other, other + 3, (comment, len(text), merged), code="DO200")
        return result_type(text, text[:comment] + merged, fixed=[found])

    monkeypatch.setitem(check._STATE, "fix_source", _planted(check, moves))
    assert _kinds(check) == set()

    def drops(text, result_type):  # type: ignore[no-untyped-def]
        found = _finding(other, other + 3, (comment, len(text), merged.replace("# keep me\n", "")), code="DO200")
        return result_type(text, text[:comment] + merged.replace("# keep me\n", ""), fixed=[found])

    monkeypatch.setitem(check._STATE, "fix_source", _planted(check, drops))
    assert _kinds(check) == {"bytes_changed_outside_fixes"}


def test_corpus_check_sees_a_removed_comment(check: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    start = SOURCE.index("# keep")
    end = SOURCE.index("run")

    def rewrite(text, result_type):  # type: ignore[no-untyped-def]
        return result_type(text, text[:start] + text[end:], fixed=[_finding(start, end, (start, end, ""))])

    monkeypatch.setitem(check._STATE, "fix_source", _planted(check, rewrite))
    assert _kinds(check) == {"bytes_changed_outside_fixes"}


def test_corpus_check_sees_a_second_pass_change_and_a_rejected_output(
    check: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(check._STATE, "fix_source", lambda text, **_: _grow(text))
    assert {"second_pass_changes", "output_rejected"} <= _kinds(check)


def _grow(text: str):  # type: ignore[no-untyped-def]
    from dopt.optimizer.pipeline import Result

    return Result(text, text + "ENV ONLYKEY\n" if text == SOURCE else text + "RUN more\n")


def test_corpus_check_sees_a_traceback(check: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(text: str, **_: object) -> None:
        raise KeyError("planted")

    monkeypatch.setitem(check._STATE, "fix_source", crash)
    assert _kinds(check) == {"tracebacks"}


def test_corpus_check_knows_the_oracles_version_differences(check: ModuleType) -> None:
    assert check.examine("FROM a\nRUN << EOF\nx\nEOF\n").known_oracle_difference
    assert check.examine('FROM a\nCMD ["a"] b\n').known_oracle_difference
    assert set(check.examine(SOURCE).fixed) == {"safe", "unsafe"}  # both modes ran
