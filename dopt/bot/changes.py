"""Fix every Dockerfile of a checkout and describe the result for a commit and a pull request.

A reviewer decides from the pull request alone whether to merge, so its body says for each change
where it is, which rule made it, why that rule helps (taken from the rule's own documentation, the
same text ``dopt explain`` prints) and whether the fix is safe or may change behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dopt import __version__
from dopt.bot import pins as bot_pins
from dopt.bot.git import TRAILER

if TYPE_CHECKING:
    from dopt.optimizer.config import Settings

MARKER = "<!-- dopt-bot -->"  # lets a reader (or a later tool) recognise the bot's description
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65,536 characters; keep room for the footer
TITLE = "dopt: optimize Dockerfiles"


@dataclass(frozen=True)
class Change:
    """One applied fix."""

    path: str  # relative to the repository root, with forward slashes
    line: int
    code: str
    rule: str
    description: str
    safety: str  # "safe" or "unsafe"


@dataclass
class FileFix:
    """A Dockerfile the bot rewrote."""

    path: str
    source: str
    output: str
    changes: list[Change]


@dataclass
class FixPlan:
    """Everything one pass over the checkout did."""

    files: list[FileFix] = field(default_factory=list)
    examined: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: why" for files left alone
    refused: list[str] = field(default_factory=list)  # fixes verification refused, "path:line: CODE why"
    base_images: list[bot_pins.BaseImageChange] = field(default_factory=list)
    failed_lookups: list[bot_pins.FailedLookup] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [change for fix in self.files for change in fix.changes]

    @property
    def paths(self) -> list[str]:
        return [fix.path for fix in self.files]


def fix_tree(root: Path, *, unsafe_fixes: bool, pin_options: Mapping[str, Any] | None = None) -> FixPlan:
    """Rewrite every Dockerfile under ``root`` in place; what changed and what was left alone.

    Each file gets the settings of the configuration nearest to it (``dopt.toml`` or
    ``[tool.dopt]``), exactly as ``dopt fix`` would; ``unsafe_fixes`` can only add unsafe fixes
    on top of a configuration, never turn them off. ``pin_options`` (``pin``, ``update-pins``,
    ``registry-mirrors``... as ``[tool.dopt.rules]`` spells them) override the configuration's;
    when either asks for pinning, the base images are looked up in their registries first. Raises
    ``ConfigError`` for a bad configuration, because fixing with the wrong rules would be worse
    than not fixing.
    """
    from dopt.optimizer.config import ConfigError

    plan = FixPlan()
    found = _dockerfiles(root, plan, pin_options or {})
    try:
        answers = bot_pins.look_up([(rel, text, settings) for _, rel, text, settings in found])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    failures: list[tuple[str, str, str, str]] = []
    for path, rel, text, settings in found:
        answer = answers.get(rel, {})
        failures += [(rel, *failure) for failure in bot_pins.failed_lookups(text, answer)]
        _fix_file(plan, path, rel, text, settings.merged(rule_options=answer), unsafe_fixes)
    plan.failed_lookups = bot_pins.merge_failures(failures)
    return plan


def _dockerfiles(root: Path, plan: FixPlan, pin_options: Mapping[str, Any]) -> list[tuple[Path, str, str, Settings]]:
    """Every readable Dockerfile under ``root``: (path, path relative to root, text, settings)."""
    from dopt.cli import discover
    from dopt.optimizer.config import Settings, settings_for
    from dopt.optimizer.syntax import decode

    found: list[tuple[Path, str, str, Settings]] = []
    for path, problem in discover([str(root)]):
        if problem:  # only "no Dockerfile in this folder": nothing to do
            continue
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            plan.skipped.append(
                f"{rel}: a symbolic link (the file it points to is fixed instead, if in the repository)"
            )
            continue
        plan.examined += 1
        settings = settings_for(path)
        if settings.source is not None and not settings.source.resolve().is_relative_to(root.resolve()):
            settings = Settings()  # a configuration above the temporary clone is not the repository's
        try:
            text = decode(path.read_bytes())
        except OSError as err:
            plan.skipped.append(f"{rel}: cannot be read ({err.strerror or err})")
            continue
        found.append((path, rel, text, settings.merged(rule_options=dict(pin_options))))
    return found


def _fix_file(plan: FixPlan, path: Path, rel: str, text: str, settings: Settings, unsafe_fixes: bool) -> None:
    """Pin and update the file's base images, apply the other fixes, write it and record what changed."""
    from dopt.cli import write_atomic
    from dopt.optimizer.api import fix_source
    from dopt.optimizer.syntax import DockerfileSyntaxError

    try:
        pinned = bot_pins.pin_and_update(
            text, rel=rel, path=path, settings=settings, unsafe_fixes=unsafe_fixes or settings.unsafe_fixes
        )
        result = fix_source(
            pinned.text,
            path=str(path),
            unsafe_fixes=True if unsafe_fixes else None,
            context_dir=path.parent,
            settings=settings,
        )
    except DockerfileSyntaxError as err:
        plan.skipped.append(f"{rel}: does not parse, left as it is (line {err.line}: {err.message})")
        return
    for rejected in pinned.rejected + result.rejected:
        finding = rejected.finding
        plan.refused.append(f"{rel}:{finding.line}: {finding.code} {rejected.reason}")
    if result.output == text:
        return
    write_atomic(path, result.output)
    changes = [
        Change(
            path=rel,
            line=f.line,
            code=f.code,
            rule=f.rule,
            description=f.fix.description if f.fix else f.message,
            safety=str(f.fix.safety.value) if f.fix else "safe",
        )
        for f in sorted(pinned.fixed + result.fixed, key=lambda f: (f.line, f.column, f.code))
    ]
    plan.files.append(FileFix(rel, text, result.output, changes))
    plan.base_images += pinned.changes


# -- rule documentation -----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleText:
    """What the pull request says about a rule."""

    code: str
    name: str
    headline: str  # the documentation's first paragraph
    why: str  # the first paragraph of its "Why" section, if it has one


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def rule_text(code: str, name: str) -> RuleText:
    """The first paragraph of the rule's documentation, and the first paragraph of its "Why"."""
    from dopt.transforms import all_rules

    for rule in all_rules():
        if rule.code == code:
            doc = rule.documentation()
            paragraphs = _paragraphs(doc)
            headline = paragraphs[0] if paragraphs else rule.summary
            # Docs open with "DO100 keyword-case: what it does."; the list item names the rule already.
            prefix = re.match(rf"{re.escape(rule.code)}\s+{re.escape(rule.name)}\s*:\s*", headline)
            if prefix and headline[prefix.end() :]:
                rest = headline[prefix.end() :]
                headline = rest[0].upper() + rest[1:]
            why = ""
            match = re.search(r"^#+\s*Why\s*$(.*?)(?=^#+\s|\Z)", doc, flags=re.M | re.S)
            if match:
                section = _paragraphs(match.group(1))
                why = section[0] if section else ""
            return RuleText(code, rule.name, headline, why)
    return RuleText(code, name, f"{code} {name}", "")


# -- commit message and pull request description ----------------------------------------------


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def commit_message(plan: FixPlan) -> str:
    """Summary line, one line per change, and the trailer that marks the commit as the bot's."""
    changes = plan.changes
    summary = f"dopt: apply {_plural(len(changes), 'fix', 'fixes')} to {_plural(len(plan.files), 'Dockerfile')}"
    lines = [summary, ""]
    lines += [f"- {c.path}:{c.line}: {c.code} {c.rule}: {c.description} ({c.safety})" for c in changes]
    lines += ["", f"{TRAILER}: {__version__}"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def pull_request_body(
    plan: FixPlan,
    *,
    branch: str,
    kind: str = "pull request",
    savings: str | None = None,
) -> str:
    """The Markdown description: every change with rule, reason and fix safety; optional measurements."""
    changes = plan.changes
    unsafe = [c for c in changes if c.safety != "safe"]
    lines = [
        MARKER,
        f"dopt applied {_plural(len(changes), 'fix', 'fixes')} to {_plural(len(plan.files), 'Dockerfile')}. "
        "Every rewrite was checked by dopt before it was kept: the file still parses as BuildKit parses it, "
        "and every instruction a fix did not touch means what it meant before.",
        "",
    ]
    if unsafe:
        lines += [
            f"> **{_plural(len(unsafe), 'unsafe fix', 'unsafe fixes')}** below may change how the image "
            "behaves; review them before merging.",
            "",
        ]
    else:
        lines += ["All fixes are **safe**: same build, same image apart from caches.", ""]

    lines += ["## Changes", ""]
    table: list[str] = []
    shown = 0
    for fix in plan.files:
        block = [f"### `{fix.path}`", "", "| Line | Rule | Change | Fix safety |", "|---:|---|---|---|"]
        block += [
            f"| {c.line} | `{c.code}` {_cell(c.rule)} | {_cell(c.description)} | {c.safety} |" for c in fix.changes
        ]
        block.append("")
        if sum(len(line) + 1 for line in table + block) > BODY_LIMIT // 2:
            break
        table += block
        shown += len(fix.changes)
    lines += table
    if shown < len(changes):
        lines += [f"... and {_plural(len(changes) - shown, 'more change')}: see the commit message.", ""]

    lines += _base_images_section(plan)

    lines += ["## Why these changes help", ""]
    seen: dict[str, Change] = {}
    for change in changes:
        seen.setdefault(change.code, change)
    for code in sorted(seen):
        text = rule_text(code, seen[code].rule)
        safeties = sorted({c.safety for c in changes if c.code == code})
        lines.append(f"- **`{code}` {text.name}** ({'/'.join(safeties)} fix): {text.headline}")
        if text.why:
            lines.append(f"  {text.why}")
        lines.append(f"  More: `dopt explain {code}`.")
    lines.append("")

    if savings:
        lines += ["## Measured savings", "", savings.rstrip(), ""]
    if plan.skipped or plan.refused:
        lines += ["## Left alone", ""]
        lines += [f"- {_cell(item)}" for item in plan.skipped]
        lines += [f"- fix not applied, {_cell(item)}" for item in plan.refused]
        lines.append("")

    lines += [
        "---",
        f"<sub>Made by `dopt bot` (dopt {__version__}). Running it again updates this {kind} when the fixes "
        f"change. If anyone pushes to `{branch}`, the bot stops updating it; delete the branch to start over."
        "</sub>",
    ]
    body = "\n".join(lines) + "\n"
    if len(body) > BODY_LIMIT:
        body = body[: BODY_LIMIT - 200] + "\n\n... (description shortened; the commit message lists every change)\n"
    return body


def _code_or_none(text: str | None) -> str:
    return f"`{text}`" if text else "none"


def _base_images_section(plan: FixPlan) -> list[str]:
    """Which base images were pinned or updated, from which tag and digest to which; failed look-ups."""
    if not plan.base_images and not plan.failed_lookups:
        return []
    lines = ["## Base images", ""]
    if plan.base_images:
        lines += ["| Image | Where | Change | Tag before | Digest before | Tag after | Digest after |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| `{_cell(c.image)}` | `{_cell(c.path)}`:{c.line} | {c.action} | {_code_or_none(c.before.tag)} | "
            f"{_code_or_none(c.before.digest)} | {_code_or_none(c.after.tag)} | {_code_or_none(c.after.digest)} |"
            for c in plan.base_images
        ]
        lines.append("")
    if plan.failed_lookups:
        lines += [
            "Registry look-ups that failed (nothing was changed for these images; the next run asks again):",
            "",
        ]
        lines += [
            f"- `{_cell(f.asked)}` (in {', '.join(f'`{_cell(p)}`' for p in f.paths)}): {_cell(f.reason)}"
            for f in plan.failed_lookups
        ]
        lines.append("")
    return lines


def plan_summary(plan: FixPlan) -> list[str]:
    """Plain lines for the terminal: one per change, then what was left alone."""
    lines = [f"  {c.path}:{c.line}: {c.code} {c.rule}: {c.description} [{c.safety}]" for c in plan.changes]
    lines += [f"  skipped {item}" for item in plan.skipped]
    lines += [f"  fix not applied: {item}" for item in plan.refused]
    lines += [f"  registry look-up failed: {f.asked} ({', '.join(f.paths)}): {f.reason}" for f in plan.failed_lookups]
    return lines
