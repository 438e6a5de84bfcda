"""Real builds of the multi-stage conversion (DO601-DO607) on the examples.

For the Go, Node and Python examples: convert the naive Dockerfile with every rule and unsafe fixes
on, build the original, the converted file and the hand-written ``Dockerfile.expert``, start the
converted image and ask it for a page over HTTP, and compare the sizes. The request comes from a
helper container in the application container's network namespace, so it works whether or not
the slim image has curl.

Needs the Docker engine and the local stand-in base images (shared/docker/make-base-images). When
either is missing the tests fail with the reason; they never skip. Every image and container made
here is removed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dopt.optimizer.api import fix_source
from dopt.optimizer.syntax import parse
from dopt.verify.engine import Engine

pytestmark = pytest.mark.docker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE_IMAGES = (
    "golang:1.19", "golang:1.19-bookworm", "debian:bookworm-slim", "node:18", "node:18-slim", "python:3.11",
    "python:3.11-slim",
)
# Runs in the application's network namespace: python:3.11-slim is a local stand-in with urllib.
PROBE_IMAGE = "python:3.11-slim"
MB = 1_000_000


@dataclass(frozen=True)
class Example:
    folder: str
    code: str  # the rule that must convert it
    port: int
    answer: str  # text the page must contain


CASES = [
    Example("go-server", "DO601", 8080, "hello from go"),
    Example("node-express", "DO602", 3000, "hello from express"),
    Example("python-flask", "DO603", 5000, "hello from flask"),
]


def _build(engine: Engine, example: Example, text: str, label: str, tmp_path: Path) -> str:
    dockerfile = tmp_path / f"{label}.Dockerfile"
    dockerfile.write_text(text)
    result = engine.build(EXAMPLES / example.folder, dockerfile, label=f"{example.folder}-{label}")
    assert result.builder == "buildkit", f"{label} was built with the {result.builder} builder, not BuildKit"
    assert result.ok, f"{example.folder}: the {label} Dockerfile does not build: {result.error}\n{result.log[-3000:]}"
    return result.tag


def _probe(port: int) -> str:
    return (
        "python3 -c 'import sys, urllib.request; "
        f'print(urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=3).read().decode())\''
    )


@pytest.mark.parametrize("example", CASES, ids=lambda e: e.folder)
def test_conversion_builds_answers_and_is_smaller(engine: Engine, example: Example, tmp_path: Path) -> None:
    folder = EXAMPLES / example.folder
    original = (folder / "Dockerfile").read_text()
    expert = (folder / "Dockerfile.expert").read_text()
    result = fix_source(original, unsafe_fixes=True, context_dir=folder, path=str(folder / "Dockerfile"))
    converted = result.output
    assert any(f.code == example.code for f in result.fixed), (
        f"{example.code} did not convert {example.folder}: {[(f.code, f.message) for f in result.remaining]}"
        f" rejected: {[(r.finding.code, r.reason) for r in result.rejected]}"
    )
    assert len([i for i in parse(converted).instructions if i.name == "FROM"]) == 2, converted
    for forbidden in ("<<", "# syntax=", "--link"):
        assert forbidden not in converted, f"the converted file uses {forbidden!r}, which this engine cannot build"

    before = _build(engine, example, original, "original", tmp_path)
    after = _build(engine, example, converted, "converted", tmp_path)
    reference = _build(engine, example, expert, "expert", tmp_path)

    run = engine.run(after, smoke=_probe(example.port), smoke_image=PROBE_IMAGE, settle=2.0, timeout=60)
    assert run.smoke is not None and run.smoke.passed, (
        f"{example.folder}: the converted image did not answer on port {example.port}: "
        f"{run.describe()}\nsmoke output: {run.smoke.output if run.smoke else ''}\nlogs: {run.logs[-2000:]}\n"
        f"Dockerfile:\n{converted}"
    )
    assert example.answer in run.smoke.output

    size_before = engine.inspect_image(before).size
    size_after = engine.inspect_image(after).size
    size_expert = engine.inspect_image(reference).size
    sizes = (
        f"{example.folder}: original {size_before / MB:.1f} MB, converted {size_after / MB:.1f} MB, "
        f"expert {size_expert / MB:.1f} MB ({(size_after / size_expert - 1) * 100:+.1f}% of the expert's)"
    )
    print(sizes)
    assert size_after < size_before, f"the converted image is not smaller: {sizes}"
    assert size_after <= size_expert * 1.10, f"the converted image is more than 10% above the expert's: {sizes}"


CGO_MAIN = """\
package main

// #cgo LDFLAGS: -lsqlite3
// #include <sqlite3.h>
import "C"

import "fmt"

func main() { fmt.Println("sqlite", C.GoString(C.sqlite3_libversion())) }
"""

# The release in the tag: without one the runtime would be debian:trixie-slim, which the local
# stand-ins (bookworm only) do not provide.
CGO_DOCKERFILE = """\
FROM golang:1.19-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN go build -o app .
CMD ["./app"]
"""

WHEELS_APP = """\
import os

import psycopg2

print("psycopg2", psycopg2.__version__.split()[0], "owner", os.stat("/srv").st_uid == os.getuid())
"""

WHEELS_DOCKERFILE = """\
FROM python:3.11
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir --no-binary psycopg2 -r requirements.txt
COPY . .
RUN useradd --create-home web && chown -R web /srv
USER web
CMD ["python", "main.py"]
"""


@pytest.mark.parametrize(
    ("name", "dockerfile", "files", "expected"),
    [
        ("cgo", CGO_DOCKERFILE, {"go.mod": "module example.com/app\n\ngo 1.19\n", "main.go": CGO_MAIN}, "sqlite 3."),
        (
            "compiled-wheel",
            WHEELS_DOCKERFILE,
            {"requirements.txt": "psycopg2==2.9.9\n", "main.py": WHEELS_APP},
            "owner True",
        ),
    ],
)
def test_runtime_libraries_of_compiled_code_are_installed(
    engine: Engine, name: str, dockerfile: str, files: dict[str, str], expected: str, tmp_path: Path
) -> None:
    """cgo and a C extension built from source need the runtime package of the -dev package they linked."""
    _convert_build_and_run(engine, name, dockerfile, files, expected, tmp_path)


MOVED_MAIN = """\
package main

import (
	"fmt"
	"os"
)

func main() {
	page, err := os.ReadFile("templates/index.html")
	if err != nil {
		panic(err)
	}
	fmt.Print(string(page))
}
"""

MOVED_GO_DOCKERFILE = """\
FROM golang:1.19
LABEL org.opencontainers.image.title="moved"

WORKDIR /src
COPY . .
# Built into bin/, moved onto PATH; bin/ is gone from the image
RUN go build -ldflags "-s -w" -o bin/server . \\
    && mv bin/server /usr/local/bin/ \\
    && rm -rf bin
CMD ["server"]
"""

MOVED_PYTHON_DOCKERFILE = """\
FROM python:3.11
LABEL org.opencontainers.image.source="https://example.com/app"
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN cp run.sh /usr/local/bin/run-app.new && mv /usr/local/bin/run-app.new /usr/local/bin/run-app \\
    && cp app.py /tmp/check.py && rm /tmp/check.py
EXPOSE 8000
LABEL org.opencontainers.image.title="app"
CMD ["sh", "/usr/local/bin/run-app"]
"""


@pytest.mark.parametrize(
    ("name", "dockerfile", "files", "expected"),
    [
        (
            "moved-go-binary",
            MOVED_GO_DOCKERFILE,
            {"go.mod": "module example.com/server\n\ngo 1.19\n", "main.go": MOVED_MAIN, "templates/index.html": "hi"},
            "hi",
        ),
        (
            "moved-script-and-labels",
            MOVED_PYTHON_DOCKERFILE,
            {
                "requirements.txt": "six==1.16.0\n",
                "app.py": "import six\nprint('six', six.__version__)\n",
                "run.sh": "exec python /app/app.py\n",
            },
            "six 1.16.0",
        ),
    ],
)
def test_build_output_a_later_run_moved_or_removed_is_copied_from_where_it_is(
    engine: Engine, name: str, dockerfile: str, files: dict[str, str], expected: str, tmp_path: Path
) -> None:
    """The runtime stage copies what the build stage really has at that path, and keeps the labels."""
    converted = _convert_build_and_run(engine, name, dockerfile, files, expected, tmp_path)
    labels = [ins.dump() for ins in parse(dockerfile).instructions if ins.name == "LABEL"]
    runtime = converted[converted.rindex("\nFROM ") :]
    assert all(label in [ins.dump() for ins in parse(runtime).instructions] for label in labels), converted


def _convert_build_and_run(
    engine: Engine, name: str, dockerfile: str, files: dict[str, str], expected: str, tmp_path: Path
) -> str:
    """Convert with every rule and unsafe fixes, build in a context of ``files``, run: it prints ``expected``."""
    context = tmp_path / "context"
    for file, text in files.items():
        (context / file).parent.mkdir(parents=True, exist_ok=True)
        (context / file).write_text(text)
    converted = fix_source(dockerfile, unsafe_fixes=True, context_dir=context, path=str(context / "Dockerfile")).output
    assert len([i for i in parse(converted).instructions if i.name == "FROM"]) == 2, converted
    target = tmp_path / "Dockerfile"
    target.write_text(converted)
    result = engine.build(context, target, label=f"multistage-{name}")
    assert result.ok, f"{name} does not build: {result.error}\n{converted}\n{result.log[-3000:]}"
    run = engine.run(result.tag, settle=20.0)
    assert run.state == "exited" and run.exit_code == 0, f"{name}: {run.describe()}\n{run.logs}\n{converted}"
    assert expected in run.logs, f"{name}: unexpected output {run.logs!r}\n{converted}"
    return converted
