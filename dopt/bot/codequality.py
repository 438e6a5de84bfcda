"""Turn dopt's SARIF into a GitLab Code Quality report: ``python -m dopt.bot.codequality dopt.sarif``.

GitLab shows Code Quality findings in the merge request widget and the diff, but reads its own
format (a JSON array of issues), not SARIF. The CI template runs ``dopt check --output-format sarif``
once and converts, so the SARIF artifact and the Code Quality report always agree. It ships in the
package (not in ``ci/``) so a pipeline that only ``pip install``s dopt has it.

Each issue's fingerprint hashes the file, rule, message and how many identical findings precede
it in that file - not the line - so an issue keeps its identity when lines above it move, and
GitLab does not report it as fixed-and-new.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

SEVERITY = {"error": "major", "warning": "minor", "note": "info", "none": "info"}


def _location(result: dict[str, Any]) -> tuple[str, int]:
    try:
        physical = result["locations"][0]["physicalLocation"]
        path = str(physical["artifactLocation"]["uri"])
        line = int(physical.get("region", {}).get("startLine", 1))
    except (KeyError, IndexError, TypeError, ValueError):
        return "", 1
    return path.removeprefix("./"), line


def convert(sarif: dict[str, Any]) -> list[dict[str, Any]]:
    """Code Quality issues for every result of every run of a SARIF 2.1.0 log."""
    issues: list[dict[str, Any]] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for run in sarif.get("runs") or []:
        rules = {r.get("id"): r for r in (run.get("tool", {}).get("driver", {}).get("rules") or [])}
        for result in run.get("results") or []:
            code = str(result.get("ruleId") or "dopt")
            message = str((result.get("message") or {}).get("text") or "")
            path, line = _location(result)
            name = rules.get(code, {}).get("name")
            key = (path, code, message)
            occurrence = seen[key]
            seen[key] += 1
            fingerprint = hashlib.sha256("\0".join([*key, str(occurrence)]).encode()).hexdigest()
            issues.append(
                {
                    "type": "issue",
                    "check_name": code,
                    "description": f"{code} {name}: {message}" if name else f"{code}: {message}",
                    "severity": SEVERITY.get(str(result.get("level") or "warning"), "minor"),
                    "fingerprint": fingerprint,
                    "location": {"path": path, "lines": {"begin": line}},
                }
            )
    return issues


def main(argv: Sequence[str] | None = None) -> int:
    """Read SARIF from the named file (or standard input), write the report to standard output."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        sys.stderr.write("usage: python -m dopt.bot.codequality [dopt.sarif] > gl-code-quality-report.json\n")
        return 2
    try:
        if args and args[0] != "-":
            with open(args[0], encoding="utf-8") as fh:
                sarif = json.load(fh)
        else:
            sarif = json.load(sys.stdin)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"dopt codequality: cannot read SARIF: {err}\n")
        return 2
    json.dump(convert(sarif), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
