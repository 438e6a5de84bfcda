"""Base images for the bot: pin ``FROM`` images and bump pins that fell behind, as ``dopt fix`` does.

The registry look-ups are the command line's (:mod:`dopt.registry.pinning`, one round for the
whole checkout) and the rewrites are its rules: DO400/DO401 pin, DO410 bumps. What the bot adds is
bookkeeping for the pull request. It runs those rules as steps of their own, before the other
fixes: a pin or a bump rewrites one reference and never adds or removes a stage, so the base image
of every stage before a step pairs with the same stage's after it, and the description can say
what moved from which tag and digest to which.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopt.optimizer.config import Settings
from dopt.optimizer.pipeline import RejectedFix, run
from dopt.optimizer.rules import Finding
from dopt.registry.pinning import (
    MIRRORS,
    RESOLUTIONS,
    UPDATE_PINS,
    UPDATES,
    image_references,
    parse_mirrors,
    policy_from_options,
    reference_key,
    registry_options_for_files,
    update_line,
)
from dopt.registry.reference import Reference
from dopt.registry.resolve import Resolution

PIN_CODES = frozenset({"DO400", "DO401"})  # pin a floating or missing tag / a missing digest
UPDATE_CODES = frozenset({"DO410"})  # bump a pin that its registry has moved past
PINNED, UPDATED = "pinned", "updated"


@dataclass(frozen=True)
class BaseImageChange:
    """One stage's base image that the bot pinned or updated."""

    path: str
    line: int  # the FROM line, in the file as the bot found it
    action: str  # PINNED or UPDATED
    before: Reference
    after: Reference

    @property
    def image(self) -> str:
        """The image without tag and digest, as written (``python``, ``ghcr.io/acme/base``)."""
        return str(self.before.with_tag(None).with_digest(None))


@dataclass(frozen=True)
class FailedLookup:
    """A registry question that got no answer; nothing was changed for the image it was about."""

    image: str  # the FROM image the question was about, as the look-ups key it
    asked: str  # what was looked up: the image, or its release line (for updates)
    reason: str
    paths: tuple[str, ...]


@dataclass
class PinOutcome:
    """What the pinning steps did to one file."""

    text: str
    fixed: list[Finding] = field(default_factory=list)
    rejected: list[RejectedFix] = field(default_factory=list)
    changes: list[BaseImageChange] = field(default_factory=list)


def check_options(options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the setting when a pinning option has a value dopt cannot use."""
    policy_from_options(options)
    mirrors = options.get(MIRRORS)
    if mirrors is not None:
        parse_mirrors(mirrors)


def look_up(files: Sequence[tuple[Hashable, str, Settings]]) -> dict[Hashable, dict[str, Any]]:
    """The registries' answers for each file whose settings ask for pinning (the network edge).

    Raises ``ValueError`` for settings dopt cannot use; a failed look-up is an answer, not an error.
    """
    return registry_options_for_files([(key, text, settings.rule_options) for key, text, settings in files])


def pin_and_update(text: str, *, rel: str, path: Path, settings: Settings, unsafe_fixes: bool) -> PinOutcome:
    """Pin ``text``'s base images, then bump the pinned ones that fell behind (with ``update-pins``).

    ``settings`` carry the registry's answers; without them the rules change nothing. The
    repository's rule selection still decides: an ignored DO401 pins nothing.
    """
    if RESOLUTIONS not in settings.rule_options:
        return PinOutcome(text)  # nothing was looked up: the rules would only say so
    steps = [(PINNED, PIN_CODES, unsafe_fixes)]
    if settings.rule_options.get(UPDATE_PINS):
        # A bump is DO410's unsafe fix, and asking the bot to update pins is asking for exactly
        # that fix (the pull request marks it unsafe for review); other unsafe fixes still need
        # --unsafe-fixes.
        settings = settings.merged(extend_select=tuple(UPDATE_CODES))
        steps.append((UPDATED, UPDATE_CODES, True))
    from dopt.optimizer.api import selected_rules

    outcome = PinOutcome(text)
    for action, codes, unsafe in steps:
        rules = [rule for rule in selected_rules(settings, str(path)) if rule.code in codes]
        if not rules:
            continue
        result = run(outcome.text, rules, fix=True, unsafe_fixes=unsafe, path=str(path),
                     context_dir=path.parent, options=settings.rule_options)  # fmt: skip
        outcome.fixed += result.fixed
        outcome.rejected += result.rejected
        outcome.changes += _moved(rel, result.source, result.output, action)
        outcome.text = result.output
    return outcome


def _stage_bases(text: str) -> list[tuple[int, Reference | None]]:
    """Each stage's FROM line and external base image (None: scratch, an earlier stage, unknown)."""
    from dopt.optimizer.semantic import build_model
    from dopt.optimizer.syntax import parse

    return [(stage.from_instruction.line, stage.reference) for stage in build_model(parse(text)).stages]


def _moved(rel: str, before: str, after: str, action: str) -> list[BaseImageChange]:
    if before == after:
        return []
    pairs = zip(_stage_bases(before), _stage_bases(after), strict=True)
    return [
        BaseImageChange(rel, line, action, old, new)
        for (line, old), (_, new) in pairs
        if old is not None and new is not None and old != new
    ]


def failed_lookups(text: str, answers: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(image, what was asked, why it failed)`` for each look-up about ``text``'s base images that failed."""
    resolutions = answers.get(RESOLUTIONS) or {}
    updates = answers.get(UPDATES) or {}
    for reference in image_references(text):
        key = reference_key(reference)
        line = update_line(reference)
        questions = ((key, resolutions.get(key)), (f"{line} (for newer releases of {key})", updates.get(key)))
        for asked, found in questions:
            if found is not None and not isinstance(found, Resolution):
                yield key, asked, str(found)


def merge_failures(found: Sequence[tuple[str, str, str, str]]) -> list[FailedLookup]:
    """One entry per failed question, with every file it was asked for: ``(path, image, asked, reason)``."""
    paths: dict[tuple[str, str, str], list[str]] = {}
    for path, image, asked, reason in found:
        listed = paths.setdefault((image, asked, reason), [])
        if path not in listed:
            listed.append(path)
    return [FailedLookup(image, asked, reason, tuple(where)) for (image, asked, reason), where in paths.items()]


def pins_at_risk(failures: Sequence[FailedLookup], on_branch: Callable[[str], str | None]) -> list[FailedLookup]:
    """The failed look-ups about images that the bot's branch (``on_branch``: path to text) rewrote.

    Without an answer nothing is changed, so the new fixes carry such an image as the base branch
    has it: pushing them would undo the branch's pin or bump because of a registry outage.
    """
    return [f for f in failures if any(_rewritten(f.image, on_branch(path)) for path in f.paths)]


def _rewritten(image: str, text: str | None) -> bool:
    return text is not None and image not in {reference_key(ref) for ref in image_references(text)}
