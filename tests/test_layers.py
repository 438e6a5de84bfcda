"""Layer rules as a user meets them: a merged RUN must do what the separate RUNs did.

The merge rules (DO200-DO202) join RUN scripts with ``&&``, subshells and, under ``set -e``,
``;``. Whether such a join keeps the meaning is a question about real shells, so these tests run
real ones (dash, which is ``/bin/sh`` on Debian, and bash): every pair (and some triples) of
small stand-in scripts is written as consecutive RUNs, fixed by dopt, and both versions are run
the way BuildKit runs RUNs -- each RUN in a fresh shell started in the same directory, the next
one only if it succeeded. Output and exit status must be the same.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from oracle import buildkit_view

from dopt.optimizer.config import Settings
from dopt.optimizer.pipeline import run
from dopt.optimizer.shell import HazardKind, analyze_merge
from dopt.optimizer.syntax import parse
from dopt.transforms import all_rules

MERGE_RULES = Settings(select=("DO200", "DO201", "DO202")).rules_for(all_rules())

# Stand-ins for real commands: what they print shows what ran, in which order, with which state.
SCRIPTS = [
    "echo a",
    "false",
    "echo b; false",
    "false; echo c",
    "echo d && false",
    "false || echo e",
    "false || exit 0",
    "exit 3",
    "test -d missing || exit 0; echo f",
    "cd sub",
    "cd sub && echo g",
    "basename $(pwd)",
    "X=1; echo x=$X",
    "echo x=${X:-unset}",
    "export Y=2",
    "f() { echo in-f; }; f",
    "f 2>/dev/null || echo no-f",
    "set -e; false; echo h",
    "set -eu; echo i",
    "set +e; false; echo j",
    "set -o noglob; echo k",
    "echo ${UNSET_VAR:-l}",
    "echo * | wc -w",
    "exec echo m",
    "echo n &",
    "(cd sub; echo o)",
    "(set -e; false; echo p)",
    "{ false; echo q; }",
    "if true; then echo r; fi",
    "for i in 1 2; do echo s$i; done; echo i=${i:-none}",
    "echo t; echo u;",
    "echo v # a note",
    "trap 'echo trapped' EXIT; echo w",
    "! false",
    "true | false",
    "echo y\\\\",
    "set -eux; echo z; false; echo za",
    "set -eux; echo zb",
    "set -euo pipefail; echo zc",
    "echo ${UNSET_VAR}zd",
    "false | echo ze",
]

# A smaller set for chains of three.
CHAIN_SCRIPTS = [
    "echo a",
    "false",
    "cd sub",
    "basename $(pwd)",
    "X=1",
    "false || echo e",
    "set -eux; echo zb",
    "echo ${UNSET_VAR}zd && echo ze",
    "echo t; echo u;",
]

# Under a SHELL started with -e: where -e stops a script, and what ignores it.
ERREXIT_SCRIPTS = [
    "echo a",
    "false",
    "echo b; false",
    "false; echo c",
    "echo d && false",
    "false || echo e",
    "false || exit 0",
    "cd sub",
    "basename $(pwd)",
    "X=1; echo x=$X",
    "set +e; false; echo j",
    "set -eux; echo zb",
    "{ false; echo q; }",
    "if true; then false; echo r; fi",
    "true | false",
    "! false",
    "echo t; echo u;",
    "(false; echo o)",
    "echo $(false; echo sub)",
    "for i in 1 2; do false; echo s$i; done",
]


def _shells() -> list[str]:
    found: dict[str, str] = {}
    for name in ("dash", "bash", "sh"):
        path = shutil.which(name)
        if path:
            found.setdefault(os.path.realpath(path), path)
    return sorted(found.values())


SHELLS = _shells()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every RUN starts in; the scripts only read it."""
    root = tmp_path_factory.mktemp("run")
    (root / "sub").mkdir()
    (root / "file1").write_text("1")
    (root / "file2").write_text("2")
    return root


class Runner:
    """Runs scripts as RUN instructions do, caching what a single script does from a fresh shell."""

    def __init__(self, shell: str, flags: Sequence[str], cwd: Path) -> None:
        self.command = [shell, *flags, "-c"]
        self.cwd = cwd
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LC_ALL": "C"}
        self.cache: dict[str, tuple[int, str]] = {}

    def one(self, script: str) -> tuple[int, str]:
        if script not in self.cache:
            proc = subprocess.run(
                [*self.command, script], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=20
            )
            self.cache[script] = (proc.returncode, proc.stdout)
        return self.cache[script]

    def prepare(self, scripts: Iterable[str]) -> None:
        """Run many scripts at once (each still in a fresh shell of its own)."""
        todo = sorted(set(scripts) - self.cache.keys())
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for script, outcome in zip(todo, pool.map(self.one, todo), strict=True):
                self.cache[script] = outcome

    def runs(self, scripts: Sequence[str]) -> tuple[int, str]:
        """Each script in a fresh shell, stopping at the first failure, as a build does."""
        output = []
        for script in scripts:
            status, stdout = self.one(script)
            output.append(stdout)
            if status:
                return status, "".join(output)
        return 0, "".join(output)


@functools.cache
def _fix_cases(cases: tuple[tuple[str, ...], ...], shell_line: str = "") -> list[list[str]]:
    """Write each case as consecutive RUNs in a stage of its own, fix the file, and return the
    RUN scripts of each stage after the fix (a few cases per file keeps the engine quick)."""
    stages: list[list[str]] = []
    for first in range(0, len(cases), 8):
        batch = cases[first : first + 8]
        text = "".join(
            f"FROM scratch AS case{n}\n{shell_line}" + "".join(f"RUN {script}\n" for script in case)
            for n, case in enumerate(batch)
        )
        result = run(text, MERGE_RULES)
        assert not result.rejected, [r.reason for r in result.rejected]
        for ins in parse(result.output).instructions:
            if ins.name == "FROM":
                stages.append([])
            elif ins.name == "RUN":
                stages[-1].append(ins.args)
    assert len(stages) == len(cases)
    return stages


def _compare(runner: Runner, cases: Sequence[Sequence[str]], fixed: Sequence[Sequence[str]]) -> int:
    """Assert that every fixed case behaves as the original; the number of cases that were merged."""
    runner.prepare(script for scripts in (*cases, *fixed) for script in scripts)
    merged = 0
    for case, after in zip(cases, fixed, strict=True):
        if list(case) == list(after):
            continue
        merged += 1
        expected = runner.runs(case)
        actual = runner.runs(after)
        assert actual == expected, f"RUNs {list(case)} became {list(after)}: {expected} -> {actual}"
    return merged


@pytest.mark.parametrize("shell", SHELLS)
def test_merged_pairs_run_like_separate_runs(shell: str, workdir: Path) -> None:
    cases = tuple(itertools.product(SCRIPTS, repeat=2))
    fixed = _fix_cases(cases)
    merged = _compare(Runner(shell, (), workdir), cases, fixed)
    assert merged > len(cases) // 2  # most pairs can be joined one way or another


@pytest.mark.parametrize("shell", SHELLS)
def test_merged_chains_of_three_run_like_separate_runs(shell: str, workdir: Path) -> None:
    cases = tuple(itertools.product(CHAIN_SCRIPTS, repeat=3))
    fixed = _fix_cases(cases)
    assert _compare(Runner(shell, (), workdir), cases, fixed) > len(cases) // 2


@pytest.mark.parametrize("shell", SHELLS)
def test_merged_runs_under_a_shell_with_errexit(shell: str, workdir: Path) -> None:
    """``SHELL ["/bin/sh", "-ec"]``: joins must keep -e stopping exactly where it stopped before."""
    cases = tuple(itertools.product(ERREXIT_SCRIPTS, repeat=2))
    fixed = _fix_cases(cases, 'SHELL ["/bin/sh", "-ec"]\n')
    assert _compare(Runner(shell, ("-e",), workdir), cases, fixed) > 0


def test_expected_joins(workdir: Path) -> None:
    """The ways of joining that the rules document, on the scripts that need them."""
    cases = (
        ("echo a", "echo b"),
        ("cd sub", "basename $(pwd)"),
        ("false || exit 0", "echo after"),
        ("echo a", "false || echo e"),
        ("set -eux; echo z", "set -eux; echo zb"),
        ("set -eux; echo z", "echo a && echo b"),
        ("set -eux; echo z", "echo ${UNSET_VAR}zd"),
        ("set -e; false; echo h", "echo a; echo b"),
        ("echo n &", "echo a"),
        ("echo v # a note", "echo a"),
    )
    fixed = _fix_cases(cases)
    assert fixed == [
        ["echo a     && echo b"],
        ["( cd sub )     && basename $(pwd)"],
        ["( false || exit 0 )     && echo after"],
        ["echo a     && ( false || echo e )"],
        ["set -eux; echo z;     echo zb"],
        ["set -eux; echo z;     echo a && echo b"],
        ["set -eux; echo z", "echo ${UNSET_VAR}zd"],
        ["set -e; false; echo h", "echo a; echo b"],
        ["echo n &", "echo a"],
        ["echo v # a note", "echo a"],
    ]


@pytest.mark.parametrize("shell", SHELLS)
def test_set_e_in_a_subshell_before_and_is_ignored(shell: str, workdir: Path) -> None:
    """Why a RUN that turns on set -e is never put in a subshell: the shell ignores -e there."""
    runner = Runner(shell, (), workdir)
    assert runner.one("set -e; false; echo after") == (1, "")
    assert runner.one("( set -e; false; echo after ) && echo next") == (0, "after\nnext\n")
    assert HazardKind.ERREXIT in {h.kind for h in analyze_merge("set -e; false; echo after")}
    assert not any(h.fixed_by_subshell for h in analyze_merge("set -eux") if h.kind is HazardKind.ERREXIT)


def test_merged_run_keeps_comments_and_buildkit_reads_one_run() -> None:
    text = (
        "FROM debian:12\n"
        "RUN apt-get update \\\n"
        "    && apt-get install -y curl\n"
        "# fetch the tool\n"
        "\n"
        "RUN curl -fsSLO https://example.com/tool.tgz\n"
        "RUN cd /tmp && ls\n"
    )  # the last RUN's `cd` needs no subshell: nothing follows it
    out = run(text, MERGE_RULES).output
    assert out == (
        "FROM debian:12\n"
        "RUN apt-get update \\\n"
        "    && apt-get install -y curl \\\n"
        "# fetch the tool\n"
        "    && curl -fsSLO https://example.com/tool.tgz \\\n"
        "    && cd /tmp && ls\n"
    )
    rows = buildkit_view(out)
    assert [row[0] for row in rows] == ["FROM", "RUN"]
    assert "fetch the tool" not in rows[1][7][0]


def test_merge_runs_option_off_keeps_unrelated_runs_apart() -> None:
    """``[tool.dopt.rules] merge-runs = false``: only clean-up and update steps are folded."""
    text = (
        "FROM debian:12\n"
        "RUN apt-get update\n"
        "RUN apt-get install -y curl\n"
        "RUN rm -rf /var/lib/apt/lists/*\n"
        "RUN curl -fsSLO https://example.com/tool.tgz\n"
        "RUN tar -xzf tool.tgz\n"
    )
    folded = (
        "FROM debian:12\nRUN apt-get update \\\n    && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*\n"
    )
    off = run(text, MERGE_RULES, options={"merge-runs": False})
    assert off.output == folded + "RUN curl -fsSLO https://example.com/tool.tgz\nRUN tar -xzf tool.tgz\n"
    assert {f.code for f in off.fixed} == {"DO201", "DO202"}
    on = run(text, MERGE_RULES)
    assert on.output == folded.removesuffix("\n") + (
        " \\\n    && curl -fsSLO https://example.com/tool.tgz \\\n    && tar -xzf tool.tgz\n"
    )


def test_refused_merge_says_why_and_offers_no_fix() -> None:
    text = "FROM debian:12\nRUN dockerd &\nRUN docker info\nENV X=1\nRUN set -e; make\nRUN make install; make check\n"
    result = run(text, MERGE_RULES, fix=False)
    messages = {f.line: f.message for f in result.remaining}
    assert all(f.fix is None for f in result.remaining)
    assert set(messages) == {3, 6}
    assert "the RUN at line 2 ends with `&`" in messages[3]
    assert "`set -e`" in messages[6] and "only a RUN that starts with `set -e;`" in messages[6]
    assert run(text, MERGE_RULES).output == text


def test_add_of_a_wildcard_without_a_readable_context_is_only_reported() -> None:
    rules = Settings(select=("DO251",)).rules_for(all_rules())
    text = "FROM debian:12\nADD vendor/* /vendor/\nADD *.py /app/\n"
    result = run(text, rules, context_dir=Path("/nonexistent/context"), path="/nonexistent/context/Dockerfile")
    assert result.output == "FROM debian:12\nADD vendor/* /vendor/\nCOPY *.py /app/\n"
    (remaining,) = result.remaining
    assert remaining.fix is None and "cannot be read" in remaining.message
