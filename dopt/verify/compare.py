"""Decide whether a rewritten Dockerfile is at least as good as the original.

The verdict is conservative on purpose: dopt claims its safe fixes change
nothing but size and build speed, so any other observable difference (a file,
an owner, the container's exit code, the smoke command's answer) fails
verification and is named.  With unsafe fixes the base image may change, so
the file-system diff is reported but only behaviour and size decide.

Thresholds exist because timings are noisy and layer sizes wobble by a few
bytes between identical builds; they are module constants so reports can
state them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dopt.verify.engine import Engine, RunResult
from dopt.verify.fsdiff import CACHE_RULES, FsDiff, Snapshot, diff_snapshots, snapshot_tar
from dopt.verify.measure import Measurement, measure

#: The fixed image may be this much larger before we call it worse.
SIZE_SLACK_BYTES = 1 << 20
SIZE_SLACK_RATIO = 0.01
#: Rebuild after a code edit counts as worse beyond ratio * original + seconds.
REBUILD_SLACK_RATIO = 1.25
REBUILD_SLACK_SECONDS = 2.0
#: Cold builds download packages, so they only warn, with a wide margin.
COLD_SLACK_RATIO = 1.5
COLD_SLACK_SECONDS = 10.0

#: Image settings that change how a container starts or is managed.
CONFIG_KEYS = (
    "Entrypoint",
    "Cmd",
    "User",
    "WorkingDir",
    "Env",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "StopSignal",
    "Shell",
)

#: Sidecar used for smoke commands: it has curl and shares the app's network.
DEFAULT_SMOKE_IMAGE = "buildpack-deps:bookworm-curl"


@dataclass(frozen=True)
class ConfigChange:
    key: str
    before: object
    after: object


@dataclass(frozen=True)
class VerifyOptions:
    """How to run and judge the two images."""

    unsafe: bool = False
    smoke: str | None = None
    smoke_image: str | None = DEFAULT_SMOKE_IMAGE
    command: Sequence[str] | None = None
    settle_seconds: float = 3.0
    smoke_timeout: float = 30.0
    extra_allowed: Sequence[str] = ()
    cache_rules: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(CACHE_RULES))


@dataclass
class Verification:
    """Everything measured for one original/fixed pair and the verdict."""

    original: Measurement
    fixed: Measurement
    unsafe: bool = False
    fs: FsDiff | None = None
    config_changes: list[ConfigChange] = field(default_factory=list)
    run_before: RunResult | None = None
    run_after: RunResult | None = None
    fixes: list[tuple[str, str, int | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inconclusive: str | None = None

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``inconclusive`` (the original does not build)."""
        if self.inconclusive:
            return "inconclusive"
        return "failed" if self.problems else "ok"


def snapshot_image(engine: Engine, ref: str) -> Snapshot:
    with engine.export(ref) as stream:
        return snapshot_tar(stream)


def config_changes(before: Mapping[str, object], after: Mapping[str, object]) -> list[ConfigChange]:
    """Differences in start-up settings (command, user, env, ports...)."""
    changes = []
    for key in CONFIG_KEYS:
        old, new = before.get(key), after.get(key)
        if key == "Env":
            old, new = sorted(old or []), sorted(new or [])  # type: ignore[call-overload]
        if (old or None) != (new or None):
            changes.append(ConfigChange(key, old, new))
    return changes


def _mib(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _judge_numbers(result: Verification) -> None:
    original, fixed = result.original, result.fixed
    assert original.size is not None and fixed.size is not None
    limit = original.size + max(SIZE_SLACK_BYTES, int(original.size * SIZE_SLACK_RATIO))
    if fixed.size > limit:
        result.problems.append(f"image grew from {_mib(original.size)} to {_mib(fixed.size)}")
    if original.rebuild is not None and original.rebuild.ok:
        if fixed.rebuild is not None and not fixed.rebuild.ok:
            result.problems.append(
                f"rebuild after a code change fails at {fixed.rebuild.failed_step}: {fixed.rebuild.error}"
            )
        elif original.rebuild_seconds is not None and fixed.rebuild_seconds is not None:
            allowed = original.rebuild_seconds * REBUILD_SLACK_RATIO + REBUILD_SLACK_SECONDS
            if fixed.rebuild_seconds > allowed:
                result.problems.append(
                    f"rebuild after a code change got slower: {original.rebuild_seconds:.1f}s -> "
                    f"{fixed.rebuild_seconds:.1f}s"
                )
    if original.cold_seconds is not None and fixed.cold_seconds is not None:
        allowed = original.cold_seconds * COLD_SLACK_RATIO + COLD_SLACK_SECONDS
        if fixed.cold_seconds > allowed:
            result.warnings.append(f"cold build got slower: {original.cold_seconds:.1f}s -> {fixed.cold_seconds:.1f}s")


def _judge_files(engine: Engine, result: Verification, options: VerifyOptions, snapshots: dict[str, Snapshot]) -> None:
    for measurement in (result.original, result.fixed):
        if measurement.label not in snapshots:
            snapshots[measurement.label] = snapshot_image(engine, measurement.cold.tag)
    result.fs = diff_snapshots(
        snapshots[result.original.label],
        snapshots[result.fixed.label],
        cache_rules=options.cache_rules,
        extra_allowed=options.extra_allowed,
    )
    unexpected = result.fs.unexpected
    if not unexpected:
        return
    shown = ", ".join(f"/{c.path} ({c.change}: {c.detail})" for c in unexpected[:10])
    more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
    message = f"file system differs beyond removed caches: {shown}{more}"
    if options.unsafe:
        result.warnings.append(message)
    else:
        result.problems.append(message)


def _judge_behaviour(engine: Engine, result: Verification, options: VerifyOptions) -> None:
    smoke_image = options.smoke_image
    if options.smoke and smoke_image and not engine.has_image(smoke_image):
        result.warnings.append(f"smoke helper image {smoke_image} missing; running the smoke command inside")
        smoke_image = None
    runs = []
    for measurement in (result.original, result.fixed):
        runs.append(
            engine.run(
                measurement.cold.tag,
                command=options.command,
                settle=options.settle_seconds,
                smoke=options.smoke,
                smoke_image=smoke_image,
                timeout=options.smoke_timeout,
            )
        )
    result.run_before, result.run_after = runs
    before, after = runs
    if before.outcome() != after.outcome():
        result.problems.append(f"behaviour changed: original {before.describe()}, fixed {after.describe()}")
    elif before.smoke is not None and not before.smoke.passed:
        result.warnings.append("the smoke command fails for the original image too")


def compare(
    engine: Engine,
    original: Measurement,
    fixed: Measurement,
    options: VerifyOptions,
    *,
    snapshots: dict[str, Snapshot] | None = None,
) -> Verification:
    """Judge ``fixed`` against ``original``; both must come from ``engine``.

    ``snapshots`` caches exported file systems by measurement label, so one
    original can be compared with several variants without exporting it again.
    """
    result = Verification(original=original, fixed=fixed, unsafe=options.unsafe)
    if not original.ok:
        result.inconclusive = (
            f"the original Dockerfile does not build (at {original.cold.failed_step or 'an unknown step'}: "
            f"{original.cold.error}); nothing to compare, and not caused by dopt"
        )
        return result
    if not fixed.ok:
        step = fixed.cold.failed_step or "an unknown step"
        result.problems.append(f"the fixed Dockerfile does not build: {step}: {fixed.cold.error}")
        return result
    assert original.image is not None and fixed.image is not None
    result.config_changes = config_changes(original.image.config, fixed.image.config)
    _judge_numbers(result)
    _judge_files(engine, result, options, snapshots if snapshots is not None else {})
    _judge_behaviour(engine, result, options)
    return result


def verify_texts(
    original_text: str,
    fixed_text: str,
    context: Path,
    options: VerifyOptions | None = None,
    *,
    engine: Engine | None = None,
) -> Verification:
    """Build, measure and compare two Dockerfile texts against one context.

    This is the core of ``dopt verify``: it knows nothing about how the fixed
    text was produced, so it can be tested with hand-written pairs.
    """
    options = options or VerifyOptions()
    own_engine = engine is None
    active = engine or Engine()
    try:
        active.info()
        with tempfile.TemporaryDirectory(prefix="dopt-verify-") as work:
            workdir = Path(work)
            original = measure(active, original_text, context, workdir, "original")
            fixed = measure(active, fixed_text, context, workdir, "fixed")
            return compare(active, original, fixed, options)
    finally:
        if own_engine:
            active.cleanup()
