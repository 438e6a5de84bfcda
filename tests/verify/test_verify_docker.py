"""Real builds: each pair is written by hand so the expected verdict is known.

Builds are shared through module-scoped fixtures; images are removed by the
session engine's cleanup.
"""

from __future__ import annotations

import html.parser
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from verify_helpers import write_tree

from dopt.optimizer.syntax import DockerfileSyntaxError
from dopt.verify import bench, command
from dopt.verify.command import FixOutcome
from dopt.verify.compare import Verification, VerifyOptions, verify_texts
from dopt.verify.engine import Engine, NoEngineError
from dopt.verify.layers import LayerAnalysis, analyze_image, render_html, render_terminal

pytestmark = pytest.mark.docker

Analyses = list[tuple[str, LayerAnalysis]]

MB = 1_000_000

APT_BEFORE = """\
FROM debian:bookworm-slim
RUN apt-get update
RUN apt-get install -y --no-install-recommends jq
COPY app.sh /app/app.sh
CMD ["sh", "/app/app.sh"]
"""

APT_AFTER = """\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends jq \\
    && rm -rf /var/lib/apt/lists/*
COPY app.sh /app/app.sh
CMD ["sh", "/app/app.sh"]
"""

PIP_BEFORE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
EXPOSE 8000
CMD ["python", "app.py"]
"""

PIP_AFTER = """\
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8000
CMD ["python", "app.py"]
"""

HTTP_APP = """\
import http.server

import six


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello {six.__name__}\\n".encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
"""


@pytest.fixture(scope="module")
def apt_pair(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Verification:
    context = write_tree(tmp_path_factory.mktemp("apt"), {"app.sh": "echo '{\"ok\": true}' | jq -c .\n"})
    return verify_texts(APT_BEFORE, APT_AFTER, context, engine=engine)


@pytest.fixture(scope="module")
def pip_pair(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Verification:
    context = write_tree(tmp_path_factory.mktemp("pip"), {"app.py": HTTP_APP, "requirements.txt": "six==1.16.0\n"})
    options = VerifyOptions(smoke="curl -fsS http://127.0.0.1:8000/")
    return verify_texts(PIP_BEFORE, PIP_AFTER, context, options, engine=engine)


def test_engine_detection(engine: Engine) -> None:
    info = engine.info()
    assert info.server_version and info.api_version
    assert info.buildkit, f"{info.client} {info.client_version} should drive BuildKit"


def test_no_engine_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing-listens-here.sock")
    with pytest.raises(NoEngineError) as caught:
        Engine().info()
    assert "\n" not in str(caught.value) and str(caught.value).startswith("no Docker engine")
    out, err = io.StringIO(), io.StringIO()
    assert command.run_layers("debian:bookworm-slim", None, out=out, err=err) == 2
    assert err.getvalue().count("\n") == 1 and "no Docker engine" in err.getvalue()


def test_merged_apt_run_with_cleanup_is_smaller_and_equivalent(apt_pair: Verification) -> None:
    before, after = apt_pair.original, apt_pair.fixed
    assert before.size is not None and after.size is not None
    sizes = f"original {before.size} bytes, fixed {after.size} bytes"
    assert apt_pair.status == "ok", f"{apt_pair.problems} ({sizes})"
    assert after.size < before.size - 5 * MB, f"apt lists should be gone: {sizes}"
    assert after.layer_count == before.layer_count - 1
    assert apt_pair.fs is not None and not apt_pair.fs.unexpected
    assert any(c.reason == "cache: apt-cleanup" for c in apt_pair.fs.allowed)
    assert apt_pair.run_before is not None and apt_pair.run_before.state == "exited"
    assert apt_pair.run_before.exit_code == 0 and apt_pair.run_before.logs.strip() == '{"ok":true}'


def test_reordered_copy_keeps_dependencies_cached_after_a_code_change(pip_pair: Verification) -> None:
    assert pip_pair.status == "ok", pip_pair.problems
    before, after = pip_pair.original, pip_pair.fixed
    assert before.probe == after.probe == "app.py"
    assert before.rebuild is not None and after.rebuild is not None
    pip_step = {s.instruction: s.cached for s in before.rebuild.instruction_steps}
    assert pip_step["RUN pip install -r requirements.txt"] is False
    fixed_steps = {s.instruction: s.cached for s in after.rebuild.instruction_steps}
    assert fixed_steps["RUN pip install --no-cache-dir -r requirements.txt"] is True
    assert fixed_steps["COPY . ."] is False
    assert after.rebuild.cache_hits > before.rebuild.cache_hits
    assert pip_pair.fs is not None and any(c.reason == "cache: pip-no-cache-dir" for c in pip_pair.fs.allowed)
    runs = (pip_pair.run_before, pip_pair.run_after)
    assert all(r is not None and r.state == "running" and r.smoke and r.smoke.passed for r in runs)
    assert pip_pair.run_after is not None and pip_pair.run_after.smoke is not None
    assert pip_pair.run_after.smoke.output.strip() == "hello six"


def test_unexpected_file_change_fails_and_names_the_paths(engine: Engine, tmp_path: Path) -> None:
    before = 'FROM debian:bookworm-slim\nRUN echo one > /etc/app.conf && mkdir /srv/data\nCMD ["true"]\n'
    after = 'FROM debian:bookworm-slim\nRUN echo two > /etc/app.conf\nCMD ["true"]\n'
    result = verify_texts(before, after, write_tree(tmp_path, {"x.sh": "true\n"}), engine=engine)
    assert result.status == "failed"
    assert result.fs is not None
    assert {c.path for c in result.fs.unexpected} == {"etc/app.conf", "srv/data"}
    assert "/etc/app.conf (changed: content)" in result.problems[0]


def test_build_failures_are_attributed(engine: Engine, tmp_path: Path) -> None:
    context = write_tree(tmp_path, {"x.sh": "true\n"})
    good = "FROM debian:bookworm-slim\nRUN true\n"
    broken = "FROM debian:bookworm-slim\nRUN exit 3\n"
    already_broken = verify_texts(broken, good, context, engine=engine)
    assert already_broken.status == "inconclusive"
    assert already_broken.inconclusive is not None and "not caused by dopt" in already_broken.inconclusive
    broken_by_fix = verify_texts(good, broken, context, engine=engine)
    assert broken_by_fix.status == "failed"
    assert "RUN exit 3" in broken_by_fix.problems[0]


def test_changed_exit_code_is_a_behaviour_change(engine: Engine, tmp_path: Path) -> None:
    context = write_tree(tmp_path, {"x.sh": "true\n"})
    before = 'FROM debian:bookworm-slim\nCMD ["sh", "-c", "exit 0"]\n'
    after = 'FROM debian:bookworm-slim\nCMD ["sh", "-c", "exit 4"]\n'
    result = verify_texts(before, after, context, engine=engine)
    assert result.status == "failed"
    assert any(p.startswith("behaviour changed") for p in result.problems), result.problems
    assert [c.key for c in result.config_changes] == ["Cmd"]


def test_a_command_that_cannot_start_is_an_outcome_not_a_crash(engine: Engine) -> None:
    result = engine.run("debian:bookworm-slim", command=["/no/such/binary"], settle=0.5)
    assert result.state == "error" and "no/such/binary" in result.logs
    leftovers = engine._docker(["ps", "-aq", "--filter", f"label=dopt.verify={engine.token}"])
    assert leftovers.stdout.strip() == ""


def test_classic_builder_reports_cache_hits(tmp_path: Path, docker_ready: None) -> None:
    context = write_tree(tmp_path / "ctx", {"a.txt": "a\n"})
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:bookworm-slim\nRUN echo legacy > /l\nCOPY a.txt /a.txt\n")
    with Engine(buildkit=False) as legacy:
        first = legacy.build(context, dockerfile, label="legacy")
        second = legacy.build(context, dockerfile, label="legacy")
    assert first.ok and second.ok and second.builder == "legacy"
    assert [s.cached for s in second.instruction_steps] == [True, True]


LAYERS_BEFORE = """\
FROM debian:bookworm-slim
RUN head -c 3000000 /dev/urandom > /blob \\
    && mkdir -p /var/lib/apt/lists && head -c 1000000 /dev/urandom > /var/lib/apt/lists/fake_Packages
RUN rm /blob
"""

LAYERS_AFTER = """\
FROM debian:bookworm-slim
RUN head -c 3000000 /dev/urandom > /blob && rm /blob
"""


@pytest.fixture(scope="module")
def layer_analyses(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, LayerAnalysis]]:
    work = tmp_path_factory.mktemp("layers")
    context = write_tree(work / "ctx", {"x": "x\n"})
    analyses = []
    for label, text in (("before", LAYERS_BEFORE), ("after", LAYERS_AFTER)):
        dockerfile = work / f"{label}.Dockerfile"
        dockerfile.write_text(text)
        build = engine.build(context, dockerfile, label=f"layers-{label}")
        assert build.ok, build.error
        analyses.append((label, analyze_image(engine, build.tag, base="debian:bookworm-slim")))
    return analyses


def test_layers_count_bytes_deleted_by_a_later_layer(layer_analyses: Analyses) -> None:
    before = layer_analyses[0][1]
    offenders = {(o.path, o.rule): o for o in before.offenders}
    blob = offenders[("/blob", "cleanup-same-layer")]
    assert blob.size == 3 * MB and blob.layer == 1 and blob.reason == "deleted by layer 2"
    assert offenders[("/var/lib/apt/lists", "apt-cleanup")].size == 1 * MB
    assert before.layers[1].wasted_bytes == 4 * MB
    assert before.layers[1].instruction.startswith("RUN head -c 3000000")
    assert before.dive_wasted_bytes == 3 * MB
    assert before.efficiency < 1.0
    assert [layer.in_base for layer in before.layers] == [True, False, False]
    after = layer_analyses[1][1]
    assert after.wasted_bytes == 0 and after.efficiency == pytest.approx(1.0)
    text = render_terminal(before, color=False)
    assert "/blob" in text and "cleanup-same-layer" in text and "\033[" not in text
    assert "\033[31m" in render_terminal(before, color=True)


class _Structure(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.external.append(value)


def test_html_report_is_self_contained(layer_analyses: list[tuple[str, LayerAnalysis]], tmp_path: Path) -> None:
    page = render_html(layer_analyses, title="before/after")
    parser = _Structure()
    parser.feed(page)
    assert parser.external == [] and "<script" not in page
    assert parser.tags.count("svg") == 1 and "style" in parser.tags
    bars = parser.tags.count("rect")
    layer_total = sum(len(a.layers) for _, a in layer_analyses)
    assert bars >= layer_total, (bars, layer_total)
    assert "/blob" in page and "before" in page and "after" in page
    chromium = shutil.which("chromium")
    assert chromium is not None, "the report is checked in a real browser: apt-get install chromium (.ci/run does)"
    target = tmp_path / "layers.html"
    target.write_text(page)
    shot = tmp_path / "layers.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--screenshot={shot}",
            "--window-size=1200,800",
            f"file://{target}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 5000


def test_run_verify_and_bench_with_a_stand_in_optimizer(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    write_tree(
        app,
        {
            "run.sh": "echo ok\n",
            "Dockerfile": "FROM debian:bookworm-slim\nRUN echo a > /a\n"
            'RUN echo b > /b\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n',
        },
    )
    merged = 'FROM debian:bookworm-slim\nRUN echo a > /a && echo b > /b\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n'

    def fake_fix(text: str, **_: object) -> FixOutcome:
        return FixOutcome(output=merged, fixes=[("DOPT-TEST", "merge RUN", 2)])

    monkeypatch.setattr(command, "fix_dockerfile", fake_fix)
    out, err = io.StringIO(), io.StringIO()
    code = command.run_verify(app / "Dockerfile", None, False, None, "markdown", out=out, err=err)
    assert code == 0, out.getvalue() + err.getvalue()
    assert "| layers |" in out.getvalue() and "`DOPT-TEST`" in out.getvalue()

    write_tree(app, {"Dockerfile.expert": 'FROM debian:bookworm-slim\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n'})

    def unavailable(text: str, **_: object) -> FixOutcome:
        raise DockerfileSyntaxError("unterminated heredoc", 3)

    monkeypatch.setattr(bench, "fix_dockerfile", unavailable)
    table = bench.run_bench(tmp_path).to_markdown()
    lines = table.splitlines()
    assert len(lines) == 2 + 4, table
    assert "| app | dopt (safe fixes) |" in lines[3] and "does not parse: 3:1: unterminated heredoc" in lines[3]
    assert lines[5].startswith("| app | hand-written expert |") and lines[5].endswith("| ok |"), table
