"""Render a :class:`~dopt.verify.compare.Verification` for people and machines.

Three renderings of the same facts: a plain text table for terminals, JSON
for tooling, and Markdown meant to be pasted into a pull-request body so a
reviewer sees the evidence next to the diff.
"""

from __future__ import annotations

import json
from typing import Any

from dopt.verify.compare import (
    COLD_SLACK_RATIO,
    REBUILD_SLACK_RATIO,
    SIZE_SLACK_RATIO,
    Verification,
)
from dopt.verify.measure import Measurement


def format_bytes(size: int | None) -> str:
    """Decimal units, like ``docker images`` prints them."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            if unit == "B":
                return f"{value:.0f} B"
            return f"{value:.2f} GB" if unit == "GB" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return ""
    if before == 0:
        return "±0" if after == 0 else "new"
    return f"{(after - before) / before * 100:+.0f}%"


def _cache_hits(measurement: Measurement) -> str:
    if measurement.rebuild is None or not measurement.rebuild.ok:
        return "-"
    build = measurement.rebuild
    return f"{build.cache_hits}/{len(build.instruction_steps)} steps cached"


def table_rows(result: Verification) -> list[tuple[str, str, str, str]]:
    """(metric, original, fixed, change) rows shared by text and Markdown."""
    before, after = result.original, result.fixed
    rows = [
        ("image size", format_bytes(before.size), format_bytes(after.size), _change(before.size, after.size)),
        (
            "layers",
            str(before.layer_count or "-"),
            str(after.layer_count or "-"),
            ""
            if before.layer_count is None or after.layer_count is None
            else f"{after.layer_count - before.layer_count:+d}",
        ),
        (
            "cold build (--no-cache)",
            format_seconds(before.cold_seconds),
            format_seconds(after.cold_seconds),
            _change(before.cold_seconds, after.cold_seconds),
        ),
        (
            f"rebuild after editing {before.probe or after.probe or '-'}",
            format_seconds(before.rebuild_seconds),
            format_seconds(after.rebuild_seconds),
            _change(before.rebuild_seconds, after.rebuild_seconds),
        ),
        ("layer cache on that rebuild", _cache_hits(before), _cache_hits(after), ""),
    ]
    if result.run_before is not None and result.run_after is not None:
        same = "same" if result.run_before.outcome() == result.run_after.outcome() else "CHANGED"
        rows.append(("container", result.run_before.describe(), result.run_after.describe(), same))
    return rows


def _lines_after_table(result: Verification) -> list[str]:
    lines = []
    if result.fs is not None:
        lines.append(f"file system: {result.fs.summary()}; {format_bytes(result.fs.bytes_removed)} removed")
    for change in result.config_changes:
        lines.append(f"image setting {change.key}: {change.before!r} -> {change.after!r}")
    return lines


def _verdict(result: Verification) -> str:
    if result.status == "inconclusive":
        return f"INCONCLUSIVE: {result.inconclusive}"
    if result.status == "failed":
        return "FAILED"
    return "OK: the fixed Dockerfile is no worse and behaves the same"


def to_text(result: Verification) -> str:
    """A fixed-width before/after table followed by findings and the verdict."""
    header = ("", "original", "fixed", "change")
    rows = [header, *table_rows(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += _lines_after_table(result)
    if result.fixes:
        lines.append("fixes applied:")
        lines += [f"  line {line or '?'}: {code} {message}" for code, message, line in result.fixes]
    lines += [f"warning: {warning}" for warning in result.warnings]
    lines += [f"problem: {problem}" for problem in result.problems]
    lines.append(_verdict(result))
    return "\n".join(lines) + "\n"


def to_markdown(result: Verification) -> str:
    """A pull-request friendly summary: table, fixes, problems, verdict."""
    mode = "safe and unsafe fixes" if result.unsafe else "safe fixes"
    lines = [f"### dopt verify ({mode})", "", "| | original | fixed | change |", "|---|---:|---:|---:|"]
    for metric, before, after, change in table_rows(result):
        lines.append(f"| {metric} | {before} | {after} | {change} |")
    lines.append("")
    lines += [f"- {line}" for line in _lines_after_table(result)]
    if result.fixes:
        lines += ["", "<details><summary>fixes applied</summary>", ""]
        lines += [f"- line {line or '?'}: `{code}` {message}" for code, message, line in result.fixes]
        lines += ["", "</details>"]
    lines += [f"- :warning: {warning}" for warning in result.warnings]
    lines += [f"- :x: {problem}" for problem in result.problems]
    lines += ["", f"**{_verdict(result)}**", ""]
    lines.append(
        f"<sub>Thresholds: size +{SIZE_SLACK_RATIO:.0%} (min 1 MB), rebuild x{REBUILD_SLACK_RATIO} + 2 s, "
        f"cold build x{COLD_SLACK_RATIO} + 10 s (warning only).</sub>"
    )
    return "\n".join(lines) + "\n"


def _measurement_dict(measurement: Measurement) -> dict[str, Any]:
    rebuild = measurement.rebuild
    return {
        "builds": measurement.cold.ok,
        "builder": measurement.cold.builder,
        "failed_step": measurement.cold.failed_step,
        "error": measurement.cold.error,
        "size_bytes": measurement.size,
        "layers": measurement.layer_count,
        "cold_build_seconds": measurement.cold_seconds,
        "probe_file": measurement.probe,
        "rebuild_seconds": measurement.rebuild_seconds,
        "rebuild_steps": [
            {"step": step.label, "cached": step.cached} for step in (rebuild.instruction_steps if rebuild else [])
        ],
    }


def _allowed_groups(result: Verification) -> list[dict[str, Any]]:
    """Accepted differences per reason; caches can be thousands of paths."""
    assert result.fs is not None
    groups: dict[str, dict[str, Any]] = {}
    for change in result.fs.allowed:
        group = groups.setdefault(str(change.reason), {"reason": change.reason, "paths": 0, "bytes": 0})
        group["paths"] += 1
        group["bytes"] += change.size_before
    return sorted(groups.values(), key=lambda group: -group["bytes"])


def to_dict(result: Verification) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": result.status,
        "unsafe_fixes": result.unsafe,
        "original": _measurement_dict(result.original),
        "fixed": _measurement_dict(result.fixed),
        "problems": result.problems,
        "warnings": result.warnings,
        "inconclusive": result.inconclusive,
        "fixes": [{"code": code, "message": message, "line": line} for code, message, line in result.fixes],
        "config_changes": [{"key": c.key, "before": c.before, "after": c.after} for c in result.config_changes],
    }
    if result.fs is not None:
        data["filesystem"] = {
            "summary": result.fs.summary(),
            "bytes_removed": result.fs.bytes_removed,
            "unexpected": [
                {"path": "/" + c.path, "change": c.change, "detail": c.detail} for c in result.fs.unexpected
            ],
            "allowed": _allowed_groups(result),
        }
    for key, run in (("run_original", result.run_before), ("run_fixed", result.run_after)):
        if run is not None:
            data[key] = {
                "state": run.state,
                "exit_code": run.exit_code,
                "smoke_passed": run.smoke.passed if run.smoke else None,
                "smoke_output": run.smoke.output if run.smoke else None,
            }
    return data


def to_json(result: Verification) -> str:
    return json.dumps(to_dict(result), indent=2, sort_keys=True) + "\n"
