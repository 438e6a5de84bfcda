"""Measured savings for the pull request, from ``dopt.verify`` when it is installed and usable.

Measuring builds every changed Dockerfile twice with Docker, so it is optional and can fail for
reasons that have nothing to do with the fixes (no Docker engine, a base image that cannot be
pulled, the original not building at all). None of that may stop the bot: every failure becomes a
note in the pull request instead. This module is the only place that knows about ``dopt.verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Savings:
    """Markdown for the pull request and whether verification found a regression."""

    markdown: str
    regression: bool = False


def _verify_api():  # type: ignore[no-untyped-def]
    """The pieces of ``dopt.verify`` the bot uses; ImportError when that package is not there."""
    from dopt.verify.command import Engine, VerifyOptions, to_markdown, verify_texts
    from dopt.verify.engine import NoEngineError

    return Engine, VerifyOptions, to_markdown, verify_texts, NoEngineError


def measure(original: str, fixed: str, context: Path, *, unsafe: bool, label: str) -> Savings:
    """Build ``original`` and ``fixed`` in ``context`` and render the comparison; a note on failure."""
    try:
        engine_cls, options_cls, to_markdown, verify_texts, no_engine = _verify_api()
    except (ImportError, AttributeError) as err:
        return Savings(f"`{label}`: not measured: dopt's verify module is not available here ({err}).")
    try:
        with engine_cls() as engine:
            engine.info()
            result = verify_texts(original, fixed, context, options_cls(unsafe=unsafe), engine=engine)
        text = to_markdown(result)
    except no_engine as err:
        return Savings(f"`{label}`: not measured: no Docker engine ({err}).")
    except Exception as err:  # any failure of an optional measurement is a note, never a crash
        return Savings(f"`{label}`: not measured: {type(err).__name__}: {err}")
    regression = getattr(result, "status", "") == "failed"
    heading = f"#### `{label}`\n\n"
    if text.startswith("### "):  # their report's heading sits below ours
        text = "##### " + text[4:]
    return Savings(heading + text, regression)


def measure_all(files: list[tuple[str, str, str, Path]], *, unsafe: bool) -> tuple[str, bool]:
    """Markdown for every (label, original, fixed, context) and whether any regressed."""
    parts = []
    regression = False
    for label, original, fixed, context in files:
        savings = measure(original, fixed, context, unsafe=unsafe, label=label)
        parts.append(savings.markdown.rstrip())
        regression = regression or savings.regression
    text = "\n\n".join(parts)
    if regression:
        text = "> **Verification found a problem with at least one fix; read the details before merging.**\n\n" + text
    return text, regression
