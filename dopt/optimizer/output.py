"""How results reach people and machines: unified diffs, text, JSON, SARIF 2.1.0, GitHub annotations."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from dopt import __version__
from dopt.optimizer.rules import Finding, Rule

OUTPUT_FORMATS = ("text", "json", "sarif", "github")


@dataclass(frozen=True)
class FileReport:
    """Findings for one file; ``fixed`` are the ones a fix removed (fix mode only)."""

    path: str
    findings: Sequence[Finding]
    fixed: Sequence[Finding] = ()


def unified_diff(before: str, after: str, path: str) -> str:
    """A unified diff that ``patch``/``git apply`` accept; line endings shown as they are."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=path if path.startswith("/") else f"a/{path}",
        tofile=path if path.startswith("/") else f"b/{path}",
    )
    out = []
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _fix_label(f: Finding, unsafe_fixes: bool) -> str:
    if f.fix is None:
        return ""
    if f.fix.safety == "safe":
        return " [*]"
    return " [*]" if unsafe_fixes else " [unsafe fix: --unsafe-fixes]"


def format_text(reports: Sequence[FileReport], *, color: bool, unsafe_fixes: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    out = []
    for report in reports:
        for f in report.findings:
            where = paint(f"{report.path}:{f.line}:{f.column}:", "1")
            out.append(f"{where} {paint(f.code, '31;1')} {f.message}{_fix_label(f, unsafe_fixes)}")
    return "\n".join(out) + ("\n" if out else "")


def _finding_dict(path: str, f: Finding) -> dict[str, object]:
    return {
        "code": f.code,
        "rule": f.rule,
        "message": f.message,
        "filename": path,
        "location": {"line": f.line, "column": f.column},
        "end_location": {"line": f.end_line, "column": f.end_column},
        "fix": None
        if f.fix is None
        else {
            "applicability": f.fix.safety.value,
            "message": f.fix.description,
            "edits": [{"start": e.start, "end": e.end, "content": e.text} for e in f.fix.edits],
        },
    }


def format_json(reports: Sequence[FileReport]) -> str:
    items = [_finding_dict(r.path, f) for r in reports for f in r.findings]
    fixed = [_finding_dict(r.path, f) for r in reports for f in r.fixed]
    return json.dumps({"findings": items, "fixed": fixed}, indent=2) + "\n"


def format_sarif(reports: Sequence[FileReport], rules: Sequence[Rule]) -> str:
    """A SARIF 2.1.0 log: one run, every rule described, every finding a result with a region."""
    used = sorted({f.code for r in reports for f in r.findings})
    by_code = {rule.code: rule for rule in rules}
    rule_entries = []
    for code in used:
        rule = by_code.get(code)
        entry: dict[str, object] = {"id": code}
        if rule is not None:
            entry.update(
                name=rule.name,
                shortDescription={"text": rule.summary},
                fullDescription={"text": rule.documentation().splitlines()[0]},
                help={"text": rule.documentation(), "markdown": rule.documentation()},
                properties={"fixSafety": rule.fix_safety.value if rule.fix_safety else "none"},
            )
        rule_entries.append(entry)
    index = {code: i for i, code in enumerate(used)}
    results = []
    for report in reports:
        for f in report.findings:
            results.append(
                {
                    "ruleId": f.code,
                    "ruleIndex": index[f.code],
                    "level": "error" if f.code in ("DO001",) else "warning",
                    "message": {"text": f.message},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": report.path},
                                "region": {
                                    "startLine": f.line,
                                    "startColumn": f.column,
                                    "endLine": f.end_line,
                                    "endColumn": f.end_column,
                                },
                            }
                        }
                    ],
                }
            )
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dopt",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/dockerfile-optimizer/",
                        "rules": rule_entries,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _github_escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(reports: Sequence[FileReport]) -> str:
    """GitHub Actions workflow commands: one ``::warning`` annotation per finding."""
    lines = []
    for report in reports:
        for f in report.findings:
            props = ",".join(
                [
                    f"file={_github_escape(report.path, property_value=True)}",
                    f"line={f.line}",
                    f"col={f.column}",
                    f"endLine={f.end_line}",
                    f"endColumn={f.end_column}",
                    f"title={_github_escape(f.code + ' ' + f.rule, property_value=True)}",
                ]
            )
            lines.append(f"::warning {props}::{_github_escape(f.message)}")
    return "\n".join(lines) + ("\n" if lines else "")
