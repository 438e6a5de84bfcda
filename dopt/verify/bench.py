"""Benchmark dopt on the example apps: one Markdown table of before/after numbers.

For every folder under ``examples/`` that has a ``Dockerfile`` we build the
original, dopt's safe rewrite, dopt's rewrite with unsafe fixes, and the
hand-written ``Dockerfile.safe`` (what the safe fixes should reach, judged as
strictly as dopt's) and ``Dockerfile.expert`` (multi-stage, slim base, judged
like unsafe fixes) when present, and compare each with the original.  The
original is measured once and shared by all comparisons.

Usage: ``python -m dopt.verify.bench [EXAMPLES_DIR] [-o FILE]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dopt.optimizer.syntax import DockerfileSyntaxError
from dopt.verify.command import fix_dockerfile
from dopt.verify.compare import Verification, VerifyOptions, compare
from dopt.verify.engine import Engine, NoEngineError
from dopt.verify.fsdiff import Snapshot
from dopt.verify.measure import Measurement, measure
from dopt.verify.report import format_bytes, format_seconds

_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\d+)", re.IGNORECASE | re.MULTILINE)


def smoke_for(dockerfile_text: str) -> str | None:
    """An HTTP GET on the first EXPOSEd port, retried while the server starts."""
    match = _EXPOSE.search(dockerfile_text)
    return f"curl -fsS http://127.0.0.1:{match[1]}/" if match else None


@dataclass
class BenchRow:
    example: str
    variant: str
    measurement: Measurement | None
    verification: Verification | None = None
    note: str = ""

    def cells(self) -> list[str]:
        m = self.measurement
        if m is None:
            return [self.example, self.variant, "-", "-", "-", "-", "-", self.note]
        if not m.ok:
            return [
                self.example,
                self.variant,
                "-",
                "-",
                "-",
                "-",
                "-",
                f"does not build: {m.cold.failed_step}",
            ]
        cached = "-"
        if m.rebuild is not None and m.rebuild.ok:
            cached = f"{m.rebuild.cache_hits}/{len(m.rebuild.instruction_steps)}"
        verdict = self.note
        if self.verification is not None:
            verdict = self.verification.status
            if self.verification.problems:
                verdict += ": " + "; ".join(self.verification.problems)
        return [
            self.example,
            self.variant,
            format_bytes(m.size),
            str(m.layer_count),
            format_seconds(m.cold_seconds),
            format_seconds(m.rebuild_seconds),
            cached,
            verdict,
        ]


@dataclass
class BenchTable:
    rows: list[BenchRow]

    def to_markdown(self) -> str:
        header = [
            "example",
            "variant",
            "size",
            "layers",
            "cold build",
            "rebuild after code change",
            "cached steps",
            "verify",
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def _variants(original: str, dockerfile: Path) -> list[tuple[str, str | None, bool, str]]:
    """(label, text or None, unsafe, note) for every rewrite of ``original``."""
    variants: list[tuple[str, str | None, bool, str]] = []
    for label, unsafe in (("dopt (safe fixes)", False), ("dopt (--unsafe-fixes)", True)):
        try:
            fixed = fix_dockerfile(
                original, path=str(dockerfile), unsafe_fixes=unsafe, context_dir=str(dockerfile.parent)
            ).output
        except DockerfileSyntaxError as exc:
            variants.append((label, None, unsafe, f"does not parse: {exc}"))
            continue
        if fixed == original:
            variants.append((label, None, unsafe, "no changes"))
        else:
            variants.append((label, fixed, unsafe, ""))
    for suffix, label, unsafe in (("safe", "hand-written safe fixes", False), ("expert", "hand-written expert", True)):
        hand_written = dockerfile.with_name(f"Dockerfile.{suffix}")
        if hand_written.is_file():
            variants.append((label, hand_written.read_text(), unsafe, ""))
    return variants


def bench_example(engine: Engine, example: Path, workdir: Path) -> list[BenchRow]:
    dockerfile = example / "Dockerfile"
    original_text = dockerfile.read_text()
    original = measure(engine, original_text, example, workdir, "original")
    rows = [BenchRow(example.name, "original", original)]
    snapshots: dict[str, Snapshot] = {}
    for index, (label, text, unsafe, note) in enumerate(_variants(original_text, dockerfile)):
        if text is None:
            rows.append(BenchRow(example.name, label, None, note=note))
            continue
        variant = measure(engine, text, example, workdir, f"variant{index}")
        options = VerifyOptions(unsafe=unsafe, smoke=smoke_for(original_text))
        rows.append(
            BenchRow(example.name, label, variant, compare(engine, original, variant, options, snapshots=snapshots))
        )
    return rows


def run_bench(examples_dir: Path) -> BenchTable:
    """Measure every example; builds run one after another for stable timings."""
    rows: list[BenchRow] = []
    examples = sorted(path.parent for path in examples_dir.glob("*/Dockerfile"))
    for example in examples:
        with Engine() as engine, tempfile.TemporaryDirectory(prefix="dopt-bench-") as work:
            engine.info()
            rows += bench_example(engine, example, Path(work))
    return BenchTable(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("examples", nargs="?", default="examples", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    try:
        table = run_bench(args.examples)
    except NoEngineError as exc:
        print(f"dopt: {exc}", file=sys.stderr)
        return 2
    markdown = table.to_markdown()
    sys.stdout.write(markdown)
    if args.output:
        args.output.write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
