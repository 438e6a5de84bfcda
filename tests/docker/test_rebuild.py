"""Real builds: after ``dopt fix``, a one-line code change no longer re-runs the dependency install.

For each example (python-flask, node-express, go-server) the original Dockerfile and the output of
``dopt fix`` (safe fixes, the real build context) are built with the Docker engine (BuildKit, the
local stand-in base images), then one line of application code changes and each is built again.
After the fix the dependency install must come from the layer cache; before it, it must not (so
the measurement means something). The rebuild times before and after are printed and appear in
every assertion message.

The first build of each variant uses the layer cache on purpose: only the rebuild after the code
change is measured, and a unique edit per run makes sure that rebuild cannot be served from an
earlier run's cache. With no Docker engine or a missing base image the tests fail, never skip.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from dopt.optimizer.api import fix_source
from dopt.verify.engine import BuildResult, BuildStep, Engine, EngineError
from dopt.verify.measure import append_probe_comment

pytestmark = pytest.mark.docker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE_IMAGES = ("python:3.11", "node:18", "golang:1.19")

# Example -> (words that identify its dependency-install step in the build log, the file to edit).
CASES = {
    "python-flask": (("pip install",), "app.py"),
    "node-express": (("npm ci", "npm install"), "server.js"),
    "go-server": (("go mod download",), "main.go"),
}
ORIGINAL_INSTALL = {"python-flask": "pip install", "node-express": "npm install", "go-server": "go build"}


@dataclass
class Rebuild:
    label: str
    dockerfile: str
    first: BuildResult
    second: BuildResult

    def steps_with(self, words: tuple[str, ...]) -> list[BuildStep]:
        return [
            s for s in self.second.steps if s.instruction.startswith("RUN") and any(w in s.instruction for w in words)
        ]

    def summary(self) -> str:
        cached = sum(1 for s in self.second.instruction_steps if s.cached)
        total = len(self.second.instruction_steps)
        return f"{self.label}: rebuild {self.second.seconds:.1f}s ({cached}/{total} steps cached)"


def _rebuild(engine: Engine, dockerfile: str, example: Path, workdir: Path, label: str, probe: str) -> Rebuild:
    """Build ``dockerfile`` with a private copy of the example, change one line of code, build again."""
    base = workdir / label
    context = base / "context"
    shutil.copytree(example, context, ignore=shutil.ignore_patterns("Dockerfile*"))
    path = base / "Dockerfile"
    path.write_text(dockerfile)
    first = engine.build(context, path, label=f"{label}-first", timeout=900)
    assert first.ok, f"{label}: the first build failed at {first.failed_step}: {first.error}\n{first.log[-3000:]}"
    target = context / probe
    assert target.is_file(), target
    append_probe_comment(target, f"dopt rebuild test {uuid.uuid4().hex}")
    second = engine.build(context, path, label=f"{label}-rebuild", timeout=900)
    assert second.ok, f"{label}: the rebuild failed at {second.failed_step}: {second.error}\n{second.log[-3000:]}"
    return Rebuild(label, dockerfile, first, second)


@pytest.mark.parametrize("name", sorted(CASES))
def test_code_change_reuses_the_dependency_install(
    name: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLES / name
    words, probe = CASES[name]
    original = (example / "Dockerfile").read_text()
    # Fix the way `dopt fix` does: safe fixes, the example folder as the build context.
    context = tmp_path / "source"
    shutil.copytree(example, context)
    result = fix_source(original, path=str(context / "Dockerfile"), context_dir=context)
    assert "DO300" in {f.code for f in result.fixed}, [f.message for f in result.remaining]
    fixed = result.output

    try:
        before = _rebuild(engine, original, example, tmp_path, f"{name}-original", probe)
        after = _rebuild(engine, fixed, example, tmp_path, f"{name}-fixed", probe)
    except EngineError as err:
        pytest.fail(f"docker failed: {err}", pytrace=False)

    numbers = (
        f"{name}: rebuild after a code change {before.second.seconds:.1f}s before the fix, "
        f"{after.second.seconds:.1f}s after"
    )
    with capsys.disabled():
        print(f"\n{numbers}\n  {before.summary()}\n  {after.summary()}")

    original_steps = before.steps_with((ORIGINAL_INSTALL[name],))
    assert original_steps and not any(s.cached for s in original_steps), (
        f"{numbers}; the original's install step was expected to run again: {[s.label for s in original_steps]}"
    )
    install_steps = after.steps_with(words)
    assert install_steps, f"{numbers}; no dependency-install step in the fixed build:\n{fixed}"
    assert all(s.cached for s in install_steps), (
        f"{numbers}; after the fix the install step re-ran: {[s.label for s in install_steps if not s.cached]}\n{fixed}"
    )
