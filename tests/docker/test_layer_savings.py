"""Real builds: `dopt fix` makes images smaller by keeping package-manager caches out of their layers.

Three Dockerfiles written the way tutorials start are built with the Docker engine (BuildKit, the
local stand-in base images) before and after ``dopt fix`` (``fix_source`` with the default rule
set and safe fixes only, the real build context):

* the apt example from the article on layers: ``apt-get update``, ``apt-get install`` and
  ``apt-get clean`` in three RUNs, where the package lists stay in the first layer whatever the
  later ones delete (the merge-RUN rules fold the three RUNs, DO212 deletes the lists);
* a pip install of a requirements file (DO218 adds ``--no-cache-dir``). Behind this build
  machine's proxy, which drops the caching headers of PyPI's answers, pip keeps no downloaded
  wheels in its HTTP cache, so only the wheels it builds from source distributions stay in
  ``~/.cache/pip``: the requirements include one (``future``) so that there is something to save;
  with PyPI's real headers the saving is the size of every downloaded wheel;
* an npm install with a copied lockfile (DO223 ``npm ci``, DO224 ``npm cache clean --force``).

Each fixed image must be smaller than the original, must no longer contain the cache (files
under the cache folder: some before, none after) and must still do its job (the installed program
or package works in it); the sizes and the saving are printed and appear in every assertion
message. The apt example is also built with ``--cache-mounts``, whose image must be as small.

Builds use the layer cache (base images and unchanged layers are reused), so a rerun is quick.
With no Docker engine or a missing base image the tests fail, never skip.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from dopt.optimizer.api import fix_source
from dopt.optimizer.config import Settings
from dopt.verify.engine import Engine, EngineError

pytestmark = pytest.mark.docker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE_IMAGES = ("debian:bookworm", "python:3.11-slim", "node:18-slim")

ARTICLE = """\
FROM debian:bookworm
RUN apt-get update
RUN apt-get install -y curl
RUN apt-get clean
"""

PIP = """\
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
"""

NPM = """\
FROM node:18-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install
COPY server.js ./
CMD ["node", "server.js"]
"""


@dataclass(frozen=True)
class Case:
    dockerfile: str
    files: dict[str, str]  # build context: name -> text, or "@example/file" to copy from examples/
    check: tuple[str, ...]  # a command that must succeed in the fixed image
    expected: frozenset[str]  # rules that must have fixed something
    cache: str  # the folder whose files the fix keeps out of the image


CASES = {
    "apt-article": Case(ARTICLE, {}, ("curl", "--version"), frozenset({"DO212"}), "/var/lib/apt/lists"),
    "pip": Case(
        PIP,
        {"requirements.txt": "numpy==1.26.4\nfuture==0.18.3\n"},
        ("python3", "-c", "import numpy, future; print(numpy.__version__, future.__version__)"),
        frozenset({"DO218"}),
        "/root/.cache/pip",
    ),
    "npm": Case(
        NPM,
        {name: f"@node-express/{name}" for name in ("package.json", "package-lock.json", "server.js")},
        ("node", "-e", "require('express'); console.log('ok')"),
        frozenset({"DO223", "DO224"}),
        "/root/.npm/_cacache",
    ),
}


def _context(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, text in case.files.items():
        if text.startswith("@"):
            shutil.copyfile(EXAMPLES / text[1:], folder / name)
        else:
            (folder / name).write_text(text)
    return folder


def _build(engine: Engine, context: Path, dockerfile: str, label: str) -> tuple[str, int]:
    """Build ``dockerfile`` in ``context``; the tag and the image size in bytes."""
    path = context.parent / f"{label}.Dockerfile"
    path.write_text(dockerfile)
    try:
        result = engine.build(context, path, label=label, timeout=900)
    except EngineError as err:
        pytest.fail(f"docker failed: {err}", pytrace=False)
    assert result.ok, (
        f"{label}: the build failed at {result.failed_step}: {result.error}\n{dockerfile}\n{result.log[-3000:]}"
    )
    return result.tag, engine.inspect_image(result.tag).size


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _files(engine: Engine, tag: str, folder: str) -> int:
    """How many files (apt's lock files aside) the image has below ``folder``."""
    output = _works(engine, tag, ("sh", "-c", f"find {folder} -type f ! -name lock 2>/dev/null | wc -l"))
    return int(output.splitlines()[-1])


def _works(engine: Engine, tag: str, command: tuple[str, ...]) -> str:
    run = engine.run(tag, command=list(command), settle=60)
    assert run.state == "exited" and run.exit_code == 0, f"{tag}: {' '.join(command)} failed: {run.describe()}"
    return run.logs.strip()


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_image_is_smaller(name: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    context = _context(case, tmp_path / "context")
    result = fix_source(case.dockerfile, path=str(context / "Dockerfile"), context_dir=context)
    fixed_codes = {f.code for f in result.fixed}
    assert case.expected <= fixed_codes, f"{name}: expected fixes {sorted(case.expected)}, got {sorted(fixed_codes)}"
    assert not result.rejected, [r.reason for r in result.rejected]

    original, before = _build(engine, context, case.dockerfile, f"{name}-original")
    tag, after = _build(engine, context, result.output, f"{name}-fixed")
    files_before, files_after = _files(engine, original, case.cache), _files(engine, tag, case.cache)
    saving = before - after
    numbers = (
        f"{name}: original image {_mb(before)}, after `dopt fix` {_mb(after)}, "
        f"saving {_mb(saving)} ({saving / before:.1%}); files in {case.cache}: {files_before} before, "
        f"{files_after} after; rules applied: {', '.join(sorted(fixed_codes))}"
    )
    with capsys.disabled():
        print(f"\n{numbers}\n--- fixed Dockerfile ---\n{result.output}")

    assert after < before, f"{numbers}\n{result.output}"
    assert files_before > 0 and files_after == 0, numbers
    _works(engine, tag, case.check)


def test_cache_mounts_keep_the_apt_article_image_as_small(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES["apt-article"]
    context = _context(case, tmp_path / "context")
    deleting = fix_source(case.dockerfile, path=str(context / "Dockerfile"), context_dir=context).output
    settings = Settings(rule_options={"cache-mounts": True})
    mounting = fix_source(case.dockerfile, path=str(context / "Dockerfile"), context_dir=context, settings=settings)
    assert "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked" in mounting.output, mounting.output

    _, before = _build(engine, context, case.dockerfile, "apt-article-original")
    _, deleted = _build(engine, context, deleting, "apt-article-fixed")
    tag, mounted = _build(engine, context, mounting.output, "apt-article-cache-mounts")
    numbers = (
        f"apt-article: original {_mb(before)}, lists deleted {_mb(deleted)}, "
        f"cache mounts {_mb(mounted)} (saving {_mb(before - mounted)})"
    )
    with capsys.disabled():
        print(f"\n{numbers}\n--- with --cache-mounts ---\n{mounting.output}")

    assert mounted < before, numbers
    # The image keeps no lists and no downloaded packages, only apt's own bookkeeping (a few kB).
    assert mounted <= deleted + 100_000, numbers
    _works(engine, tag, case.check)
    script = "find /var/lib/apt/lists /var/cache/apt -type f ! -name lock | wc -l; test -s /var/lib/apt/extended_states"
    listing = _works(engine, tag, ("sh", "-c", script))
    assert listing.splitlines()[0] == "0", f"{numbers}: package lists or packages in the image: {listing}"
