"""Build one Dockerfile twice and record what a developer would feel.

A measurement is: a cold build (``--no-cache``) giving the final image's size,
layer count and build time, then a rebuild after a one-line change to an
application source file, giving the time a code edit costs and which steps the
layer cache could reuse.  The user's files are never touched: the context is
copied to a temporary directory and the Dockerfile is written outside it, so a
``COPY . .`` copies the same files for the original and the fixed Dockerfile.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dopt.verify.engine import BuildResult, Engine, ImageInfo

#: Comment prefix per source extension; a probe edit must not break the build.
COMMENT_PREFIX = {
    ".py": "#",
    ".rb": "#",
    ".sh": "#",
    ".pl": "#",
    ".r": "#",
    ".js": "//",
    ".mjs": "//",
    ".cjs": "//",
    ".ts": "//",
    ".go": "//",
    ".java": "//",
    ".kt": "//",
    ".rs": "//",
    ".c": "//",
    ".cc": "//",
    ".cpp": "//",
    ".h": "//",
    ".cs": "//",
    ".php": "//",
    ".swift": "//",
    ".scala": "//",
}

#: Entry points people name their main file after, most specific first.
CONVENTIONAL_MAIN = (
    "app.py",
    "main.py",
    "server.py",
    "wsgi.py",
    "manage.py",
    "server.js",
    "index.js",
    "app.js",
    "main.js",
    "src/index.js",
    "src/server.js",
    "src/index.ts",
    "main.go",
    "cmd/server/main.go",
)

SKIP_DIRS = {".git", "node_modules", "vendor", "venv", ".venv", "__pycache__", "dist", "build", "target"}

_TOKEN = re.compile(r"[\w./-]+")


@dataclass
class Measurement:
    """The numbers for one Dockerfile, plus the images they came from."""

    label: str
    dockerfile: str
    cold: BuildResult
    image: ImageInfo | None = None
    rebuild: BuildResult | None = None
    probe: str | None = None

    @property
    def ok(self) -> bool:
        return self.cold.ok and self.image is not None

    @property
    def size(self) -> int | None:
        return self.image.size if self.image else None

    @property
    def layer_count(self) -> int | None:
        return self.image.layer_count if self.image else None

    @property
    def cold_seconds(self) -> float | None:
        return self.cold.seconds if self.cold.ok else None

    @property
    def rebuild_seconds(self) -> float | None:
        return self.rebuild.seconds if self.rebuild is not None and self.rebuild.ok else None


def _is_source(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in COMMENT_PREFIX


def _walk_sources(context: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(context.rglob("*")):
        relative = path.relative_to(context)
        if any(part in SKIP_DIRS for part in relative.parts[:-1]):
            continue
        if _is_source(path):
            found.append(path)
    return found


def pick_probe_file(context: Path, dockerfile_text: str) -> Path | None:
    """The application file a developer would most likely edit next.

    Preference: a source file named in CMD/ENTRYPOINT/RUN (the thing the image
    runs), then ``package.json``'s ``main``, then conventional entry-point
    names, then the shallowest source file.  Returns ``None`` when the context
    has no source file we know how to comment.
    """
    for line in dockerfile_text.splitlines():
        keyword = line.strip().split(" ", 1)[0].upper()
        if keyword not in {"CMD", "ENTRYPOINT", "RUN"}:
            continue
        for token in _TOKEN.findall(line):
            candidate = context / token.lstrip("./")
            if token and _is_source(candidate):
                return candidate
    package = context / "package.json"
    if package.is_file():
        try:
            main = json.loads(package.read_text()).get("main")
        except (json.JSONDecodeError, UnicodeDecodeError):
            main = None
        if isinstance(main, str) and _is_source(context / main):
            return context / main
    for name in CONVENTIONAL_MAIN:
        if _is_source(context / name):
            return context / name
    sources = _walk_sources(context)
    sources.sort(key=lambda path: (len(path.relative_to(context).parts), str(path)))
    return sources[0] if sources else None


def append_probe_comment(path: Path, marker: str) -> None:
    """Append a comment line, the smallest edit that invalidates COPY caches."""
    prefix = COMMENT_PREFIX[path.suffix.lower()]
    text = path.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(f"{text}{prefix} {marker}\n")


def copy_context(context: Path, dest: Path) -> Path:
    """Copy the build context (symlinks kept as links) so edits stay private."""
    shutil.copytree(context, dest, symlinks=True)
    return dest


def measure(
    engine: Engine,
    dockerfile_text: str,
    context: Path,
    workdir: Path,
    label: str,
    *,
    rebuild: bool = True,
) -> Measurement:
    """Cold-build ``dockerfile_text`` and, if that works, rebuild after a code edit.

    ``workdir`` must be a private directory; the context copy and the
    Dockerfile are written below ``workdir / label``.
    """
    base = workdir / label
    base.mkdir(parents=True, exist_ok=False)
    dockerfile = base / "Dockerfile"
    dockerfile.write_text(dockerfile_text)
    private_context = copy_context(context, base / "context")

    cold = engine.build(private_context, dockerfile, label=f"{label}-cold", no_cache=True)
    result = Measurement(label=label, dockerfile=dockerfile_text, cold=cold)
    if not cold.ok:
        return result
    result.image = engine.inspect_image(cold.tag)
    if not rebuild:
        return result
    probe = pick_probe_file(private_context, dockerfile_text)
    if probe is None:
        return result
    result.probe = str(probe.relative_to(private_context))
    # The marker differs per measurement so one Dockerfile's rebuild can never
    # reuse cache entries created by the other's rebuild.
    append_probe_comment(probe, f"dopt verify: one-line change to measure the rebuild ({engine.token}-{label})")
    result.rebuild = engine.build(private_context, dockerfile, label=f"{label}-rebuild")
    return result
