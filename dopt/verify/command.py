"""Entry points the CLI wires to ``dopt verify`` and ``dopt layers``.

They are plain functions returning exit codes so the CLI layer stays a thin
argument parser and tests can call them directly:

* 0 - verified (or nothing to verify: no fixes, or the original itself fails
  to build, which is reported and not blamed on dopt);
* 1 - a fix made the image bigger, the rebuild slower, broke the build, or
  changed files or behaviour;
* 2 - no Docker engine, or bad arguments.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from dopt.optimizer.syntax import DockerfileSyntaxError
from dopt.verify.compare import VerifyOptions, verify_texts
from dopt.verify.engine import Engine, EngineError, NoEngineError
from dopt.verify.layers import LayerAnalysis, analyze_image, render_html, render_terminal
from dopt.verify.measure import copy_context
from dopt.verify.report import to_json, to_markdown, to_text

OUTPUT_FORMATS = ("text", "json", "markdown")


@dataclass(frozen=True)
class FixOutcome:
    """The rewritten text and the findings behind it, as (code, message, line)."""

    output: str
    fixes: list[tuple[str, str, int | None]]


def fix_dockerfile(text: str, *, path: str, unsafe_fixes: bool, context_dir: str | None) -> FixOutcome:
    """Ask dopt's optimizer for the fixed text; the only coupling to the core."""
    from dopt.optimizer.api import fix_source

    result = fix_source(text, path=path, unsafe_fixes=unsafe_fixes, context_dir=context_dir)
    fixes = [(f.code, f.message, f.line) for f in result.fixed]
    return FixOutcome(output=result.output, fixes=fixes)


def _fail(message: str, err: TextIO) -> int:
    print(f"dopt: {message}", file=err)
    return 2


def run_verify(
    dockerfile: Path,
    context: Path | None,
    unsafe_fixes: bool,
    smoke: str | None,
    output_format: str,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Fix ``dockerfile``, build before and after, print the evidence.

    The smoke command (if any) runs with ``sh -c`` in a helper container that
    shares the application container's network, e.g.
    ``curl -fsS http://127.0.0.1:8000/``.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if output_format not in OUTPUT_FORMATS:
        return _fail(f"unknown output format {output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}", err)
    if not dockerfile.is_file():
        return _fail(f"{dockerfile}: no such Dockerfile", err)
    context = context or dockerfile.parent
    if not context.is_dir():
        return _fail(f"{context}: build context is not a directory", err)
    text = dockerfile.read_text()
    try:
        fixed = fix_dockerfile(text, path=str(dockerfile), unsafe_fixes=unsafe_fixes, context_dir=str(context))
    except DockerfileSyntaxError as exc:
        return _fail(f"{dockerfile}:{exc}", err)
    if fixed.output == text:
        print(f"{dockerfile}: dopt has nothing to fix, so there is nothing to verify", file=out)
        return 0
    try:
        with Engine() as engine:
            engine.info()
            result = verify_texts(
                text, fixed.output, context, VerifyOptions(unsafe=unsafe_fixes, smoke=smoke), engine=engine
            )
    except NoEngineError as exc:
        return _fail(str(exc), err)
    except EngineError as exc:
        return _fail(f"docker failed: {exc}", err)
    result.fixes = fixed.fixes
    render = {"text": to_text, "json": to_json, "markdown": to_markdown}[output_format]
    out.write(render(result))
    return 1 if result.status == "failed" else 0


def final_base_image(dockerfile_text: str) -> str | None:
    """The image the last stage starts FROM, or ``None`` for scratch or an earlier stage."""
    stages: set[str] = set()
    base = None
    for line in dockerfile_text.splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if not args:
            continue
        base = None if args[0].lower() in stages or args[0] == "scratch" else args[0]
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2].lower())
    return base


def _analyse_dockerfile(engine: Engine, dockerfile: Path, err: TextIO) -> list[tuple[str, LayerAnalysis]]:
    """Build the Dockerfile (and dopt's fixed version when available) and analyse both."""
    text = dockerfile.read_text()
    texts = [("before", text)]
    try:
        fixed = fix_dockerfile(text, path=str(dockerfile), unsafe_fixes=False, context_dir=str(dockerfile.parent))
        if fixed.output != text:
            texts.append(("after dopt", fixed.output))
    except DockerfileSyntaxError as exc:
        print(f"dopt: {dockerfile}:{exc}; showing the original only", file=err)
    analyses = []
    with tempfile.TemporaryDirectory(prefix="dopt-layers-") as work:
        context = copy_context(dockerfile.parent, Path(work) / "context")
        for label, content in texts:
            path = Path(work) / f"{label.replace(' ', '-')}.Dockerfile"
            path.write_text(content)
            build = engine.build(context, path, label=f"layers-{label}")
            if not build.ok:
                raise EngineError(f"{label}: build fails at {build.failed_step}: {build.error}")
            analysis = analyze_image(engine, build.tag, base=final_base_image(content))
            analysis.image = f"{dockerfile} ({label})"
            analyses.append((label, analysis))
    return analyses


def run_layers(target: str, html: Path | None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Per-layer sizes and waste for an image, or for a Dockerfile before/after dopt.

    ``target`` is a local image reference, or a path to a Dockerfile, which is
    built with its directory as context (and, when dopt's optimizer is
    installed, compared with the fixed Dockerfile).  ``html`` writes a
    self-contained page with the before/after chart.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with Engine() as engine:
            engine.info()
            if Path(target).is_file():
                analyses = _analyse_dockerfile(engine, Path(target), err)
            elif engine.has_image(target):
                analyses = [(target, analyze_image(engine, target))]
            else:
                return _fail(f"{target}: neither a Dockerfile nor a local image", err)
    except NoEngineError as exc:
        return _fail(str(exc), err)
    except EngineError as exc:
        return _fail(str(exc), err)
    color = out.isatty() if hasattr(out, "isatty") else False
    for _, analysis in analyses:
        out.write(render_terminal(analysis, color=color))
    if html is not None:
        html.write_text(render_html(analyses, title=f"dopt layers: {target}"))
        print(f"wrote {html}", file=out)
    return 0
