"""The library entry points: check or fix Dockerfile text with the user's settings."""

from __future__ import annotations

from pathlib import Path

from dopt.optimizer.config import Settings
from dopt.optimizer.pipeline import Result, run
from dopt.optimizer.rules import Rule
from dopt.transforms import all_rules

FixResult = Result


def selected_rules(settings: Settings, path: str | None = None) -> list[Rule]:
    return settings.rules_for(all_rules(), path)


def fix_source(
    text: str,
    *,
    path: str = "Dockerfile",
    unsafe_fixes: bool | None = None,
    context_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> FixResult:
    """Fix ``text``; ``FixResult.output`` is the new text. Raises DockerfileSyntaxError on bad input."""
    settings = settings or Settings()
    unsafe = settings.unsafe_fixes if unsafe_fixes is None else unsafe_fixes
    return run(
        text,
        selected_rules(settings, path),
        fix=True,
        unsafe_fixes=unsafe,
        path=path,
        context_dir=Path(context_dir) if context_dir else Path(path).parent,
        options=settings.rule_options,
    )


def check_source(
    text: str,
    *,
    path: str = "Dockerfile",
    context_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> FixResult:
    """Findings for ``text`` without changing it (``FixResult.remaining``)."""
    settings = settings or Settings()
    return run(
        text,
        selected_rules(settings, path),
        fix=False,
        path=path,
        context_dir=Path(context_dir) if context_dir else Path(path).parent,
        options=settings.rule_options,
    )
