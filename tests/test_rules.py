"""Fixture-driven snapshot tests for every rule (as ruff does them).

Each ``tests/fixtures/rules/<CODE>/<case>.Dockerfile`` is run through that rule alone; the
findings and the fixed text (safe fixes, then with unsafe fixes) must equal the snapshot
``<case>.Dockerfile.snap`` beside it. Set ``DOPT_UPDATE_SNAPSHOTS=1`` to write snapshots, then
read the diff before committing. A case may have rule options (``<case>.options.json``) and the
registry answers the command line would have looked up (``<case>.resolutions.json``, in
``dopt.registry.pinning.PinLookups`` JSON form); without them, rules see no options and no
registry answers. Every fixed output must also:

* parse under BuildKit (the oracle) with the same instructions, except the ones the rule fixed;
* be stable: fixing it again changes nothing;
* keep every byte outside the fixed instructions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from oracle import buildkit_view

from dopt.optimizer.config import Settings
from dopt.optimizer.pipeline import Result, run
from dopt.optimizer.syntax import decode, parse
from dopt.registry.pinning import PinLookups
from dopt.transforms import all_rules

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
RULES = {rule.code: rule for rule in all_rules()}


def _cases() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.Dockerfile"))


def _options(case: Path) -> dict[str, object]:
    """Rule options from ``<case>.options.json``, and registry answers from ``<case>.resolutions.json``."""
    stem = case.name.removesuffix(".Dockerfile")
    options_file, resolutions_file = case.with_name(f"{stem}.options.json"), case.with_name(f"{stem}.resolutions.json")
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    if resolutions_file.exists():
        options.update(PinLookups.from_json(json.loads(resolutions_file.read_text())).options())
    return options


def _run(text: str, code: str, *, unsafe: bool, context: Path, options: dict[str, object]) -> Result:
    rules = Settings(select=(code,)).rules_for(all_rules())
    return run(text, rules, unsafe_fixes=unsafe, path=str(context / "Dockerfile"), context_dir=context, options=options)


def _snapshot(text: str, code: str, context: Path, options: dict[str, object]) -> tuple[str, list[Result]]:
    checked = run(
        text, [RULES[code]], fix=False, context_dir=context, path=str(context / "Dockerfile"), options=options
    )
    lines = ["## findings"]
    for f in checked.remaining:
        safety = f.fix.safety.value if f.fix else "no fix"
        lines.append(f"{f.line}:{f.column} {f.code} {f.message} [{safety}]")
    results = []
    for unsafe in (False, True):
        result = _run(text, code, unsafe=unsafe, context=context, options=options)
        results.append(result)
        lines.append(f"## fixed ({'with unsafe fixes' if unsafe else 'safe fixes'})")
        lines.append(result.output if result.changed else "(unchanged)")
        for rejected in result.rejected:
            lines.append(f"## rejected: {rejected.finding.code} line {rejected.finding.line}: {rejected.reason}")
    return "\n".join(lines) + "\n", results


def test_every_rule_has_fixtures_and_documentation() -> None:
    covered = {p.parent.name for p in _cases()}
    for code, rule in RULES.items():
        assert code in covered, f"{code} has no fixture folder under {FIXTURES}"
        doc = rule.documentation()
        assert doc.startswith(f"{code} {rule.name}"), f"{code}: documentation must start with its code and name"
        assert "## What it does" in doc and "## Why" in doc and "## Example" in doc, code
        if rule.fix_safety is not None:
            assert "## Fix safety" in doc, f"{code} has a fix but its doc does not say how safe it is"


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_fixture_matches_snapshot(case: Path) -> None:
    code = case.parent.name
    text = decode(case.read_bytes())
    context = case.parent / (case.name.removesuffix(".Dockerfile") + ".context")
    context = context if context.is_dir() else case.parent
    options = _options(case)
    snapshot, results = _snapshot(text, code, context, options)
    snap_path = case.with_name(case.name + ".snap")
    if os.environ.get("DOPT_UPDATE_SNAPSHOTS") or not snap_path.exists():
        snap_path.write_bytes(snapshot.encode("utf-8", "surrogateescape"))
        if not os.environ.get("DOPT_UPDATE_SNAPSHOTS"):
            pytest.fail(f"new snapshot written: {snap_path}; review it and rerun")
    assert snapshot == snap_path.read_bytes().decode("utf-8", "surrogateescape")

    for result in results:
        if not result.changed:
            continue
        out = result.output
        # BuildKit reads the output, and reads the untouched instructions exactly as before.
        after = buildkit_view(out)
        before = buildkit_view(text)
        untouched_before = [
            row[7]
            for row, ins in zip(before, parse(text).instructions, strict=True)
            if not any(start <= ins.end and ins.start <= end for start, end in result.touched)
        ]
        assert all(values in [row[7] for row in after] for values in untouched_before)
        # Idempotent: a second pass changes nothing.
        again = _run(out, code, unsafe=True, context=context, options=options)
        assert again.output == out, "a second fix changed the file again"
        # Every instruction no fix touched is kept byte for byte, in order.
        kept = [
            text[ins.start : ins.end]
            for ins in parse(text).instructions
            if not any(start <= ins.end and ins.start <= end for start, end in result.touched)
        ]
        position = 0
        for piece in kept:
            found = out.find(piece, position)
            assert found >= 0, f"untouched text changed or moved: {piece!r}"
            position = found + len(piece)


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_all_rules_together_reach_a_stable_valid_result(case: Path) -> None:
    """Rules must not undo or re-trigger each other: the whole default set, safe and unsafe."""
    text = decode(case.read_bytes())
    context = case.parent / (case.name.removesuffix(".Dockerfile") + ".context")
    context = context if context.is_dir() else case.parent
    rules = Settings().rules_for(all_rules())
    for unsafe in (False, True):
        first = run(text, rules, unsafe_fixes=unsafe, path=str(context / "Dockerfile"), context_dir=context)
        if not first.changed:
            continue
        buildkit_view(first.output)  # raises if BuildKit rejects the result
        second = run(first.output, rules, unsafe_fixes=unsafe, path=str(context / "Dockerfile"), context_dir=context)
        assert second.output == first.output, f"second pass changed the file (unsafe={unsafe})"
