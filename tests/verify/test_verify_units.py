"""Parsing, diffing, scoring and rendering, without a Docker engine."""

from __future__ import annotations

import json
from pathlib import Path

from dopt.verify.bench import smoke_for
from dopt.verify.command import final_base_image
from dopt.verify.compare import Verification, config_changes
from dopt.verify.engine import BuildResult, BuildStep, ImageInfo, parse_buildkit_log, parse_legacy_log
from dopt.verify.fsdiff import FileEntry, diff_snapshots
from dopt.verify.layers import Layer, analyze_layers, dive_efficiency, instruction_from_history
from dopt.verify.measure import Measurement, append_probe_comment, pick_probe_file
from dopt.verify.report import format_bytes, to_dict, to_json, to_markdown, to_text

BUILDKIT_LOG = """\
#4 [build 1/3] FROM docker.io/library/golang:1.19
#4 CACHED

#5 [build 2/3] COPY go.mod ./
#5 CACHED

#6 [build 3/3] RUN go build -o /out/server .
#6 0.3 compiling
#6 DONE 4.1s

#7 [stage-1 2/2] RUN false
#7 ERROR: executor failed running [/bin/sh -c false]: exit code: 1
"""

LEGACY_LOG = """\
Step 1/3 : FROM debian:bookworm-slim
 ---> 74961bff4edd
Step 2/3 : RUN echo hi
 ---> Using cache
 ---> 5b1f0c0d2c1e
Step 3/3 : RUN exit 3
 ---> Running in 63561714117e
The command '/bin/sh -c exit 3' returned a non-zero code: 3
"""


def test_buildkit_log_gives_cached_steps_and_the_failing_step() -> None:
    steps, failed, error = parse_buildkit_log(BUILDKIT_LOG)
    assert [(s.stage, s.number, s.cached) for s in steps] == [
        ("build", 1, True),
        ("build", 2, True),
        ("build", 3, False),
        ("stage-1", 2, False),
    ]
    assert steps[0].is_from and not steps[1].is_from
    assert failed == "[stage-1 2] RUN false"
    assert error is not None and "exit code: 1" in error


def test_legacy_log_gives_cached_steps_and_the_failing_step() -> None:
    steps, failed, error = parse_legacy_log(LEGACY_LOG, ok=False)
    assert [(s.number, s.cached) for s in steps] == [(1, False), (2, True), (3, False)]
    assert failed == "[3] RUN exit 3"
    assert error == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"


def test_history_entries_become_dockerfile_instructions() -> None:
    assert instruction_from_history('/bin/sh -c #(nop)  CMD ["node"]') == 'CMD ["node"]'
    assert instruction_from_history("/bin/sh -c apt-get update") == "RUN apt-get update"
    assert instruction_from_history("RUN /bin/sh -c pip install x # buildkit") == "RUN pip install x"
    assert instruction_from_history("|2 A=1 B=2 /bin/sh -c make") == "RUN make"
    assert instruction_from_history("COPY . . # buildkit") == "COPY . ."


def _entry(digest: str = "a", size: int = 1, mode: int = 0o644, uid: int = 0, kind: str = "file") -> FileEntry:
    return FileEntry(kind=kind, mode=mode, uid=uid, gid=uid, size=size, digest=digest)


def test_fs_diff_allows_removed_caches_and_names_everything_else() -> None:
    before = {
        "app/main.py": _entry("1"),
        "var/lib/apt/lists/deb_Packages": _entry(size=100),
        "root/.cache": _entry(kind="dir", size=0),
        "root/.cache/pip": _entry(kind="dir", size=0),
        "root/.cache/pip/http/abc": _entry(size=50),
        "var/log/dpkg.log": _entry("x"),
        "usr/lib/x.pyc": _entry("t1"),
        "etc/app.conf": _entry("old"),
        "srv/data": _entry(kind="dir", size=0),
    }
    after = {
        "app/main.py": _entry("1"),
        "var/log/dpkg.log": _entry("y"),
        "usr/lib/x.pyc": _entry("t2"),
        "etc/app.conf": _entry("new", mode=0o600),
    }
    diff = diff_snapshots(before, after)
    unexpected = {c.path: c.detail for c in diff.unexpected}
    assert unexpected == {"etc/app.conf": "content, mode 0644 -> 0600", "srv/data": "dir"}
    assert {c.path for c in diff.allowed} == {
        "var/lib/apt/lists/deb_Packages",
        "root/.cache",
        "root/.cache/pip",
        "root/.cache/pip/http/abc",
    }
    assert diff.bytes_removed == 150


def test_probe_is_the_file_the_image_runs(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("x = 1\n")
    (tmp_path / "server.py").write_text("print('hi')")
    assert pick_probe_file(tmp_path, 'CMD ["python", "server.py"]') == tmp_path / "server.py"
    (tmp_path / "package.json").write_text(json.dumps({"main": "lib/util.py"}))
    assert pick_probe_file(tmp_path, "CMD npm start") == tmp_path / "lib" / "util.py"
    append_probe_comment(tmp_path / "server.py", "probe")
    assert (tmp_path / "server.py").read_text() == "print('hi')\n# probe\n"


def test_dive_efficiency_follows_dives_formula() -> None:
    base = Layer(index=0, instruction="base", files={"a": 100, "big": 40}, dirs={"d"})
    base.files["d/x"] = 10
    rewrite = Layer(index=1, instruction="RUN", files={"a": 60}, whiteouts={"big"})
    drop_dir = Layer(index=2, instruction="RUN", whiteouts={"d"})
    score, wasted = dive_efficiency([base, rewrite, drop_dir])
    # a: 100 + 60 (min 60); big: 40 + 0 (min 0); d/x: 10; whiteout d: 10 (one entry).
    assert wasted == 160 + 40
    assert score == (60 + 0 + 10 + 10) / (160 + 40 + 10 + 10)


def test_waste_is_attributed_to_the_layer_that_holds_it() -> None:
    layers = [
        Layer(index=0, instruction="base", files={"bin/sh": 5}),
        Layer(index=1, instruction="RUN apt-get update", files={"var/lib/apt/lists/p": 700, "tmp/big": 300}),
        Layer(index=2, instruction="RUN rm -rf /tmp/big", whiteouts={"tmp/big"}),
        Layer(index=3, instruction="COPY app /app", files={"app/a": 20}),
        Layer(index=4, instruction="RUN chown -R app /app", files={"app/a": 20}),
    ]
    analysis = analyze_layers(layers, image="t")
    summary = [(o.path, o.size, o.layer, o.rule) for o in analysis.offenders]
    assert summary == [
        ("/var/lib/apt/lists", 700, 1, "apt-cleanup"),
        ("/tmp/big", 300, 1, "cleanup-same-layer"),
        ("/app/a", 20, 3, "copy-chown"),
    ]
    assert [layer.wasted_bytes for layer in layers] == [0, 1000, 0, 20, 0]
    assert analysis.wasted_bytes == 1020


def test_waste_in_base_layers_is_listed_last_as_base_image() -> None:
    layers = [
        Layer(index=0, instruction="base", files={"usr/big": 900}),
        Layer(index=1, instruction="RUN apt-get purge big", whiteouts={"usr/big"}),
        Layer(index=2, instruction="RUN make", files={"tmp/obj": 10}),
        Layer(index=3, instruction="RUN rm /tmp/obj", whiteouts={"tmp/obj"}),
    ]
    analysis = analyze_layers(layers, base_layers=1)
    assert [(o.path, o.rule) for o in analysis.offenders] == [
        ("/tmp/obj", "cleanup-same-layer"),
        ("/usr/big", "base-image"),
    ]


def test_final_base_image_skips_stages_and_flags() -> None:
    assert final_base_image("FROM golang:1.19 AS build\nFROM --platform=linux/amd64 debian:12\n") == "debian:12"
    assert final_base_image("FROM python:3.11 AS base\nFROM base\n") is None
    assert final_base_image("FROM scratch\n") is None


def _measurement(label: str, size: int, rebuild: float) -> Measurement:
    steps = [BuildStep(1, "FROM x", True), BuildStep(2, "COPY . .", False), BuildStep(3, "RUN make", True)]
    return Measurement(
        label=label,
        dockerfile="FROM x\n",
        cold=BuildResult(ok=True, tag=f"t:{label}", seconds=10.0, builder="buildkit", steps=steps),
        image=ImageInfo(id="sha256:0", size=size, layers=("a", "b"), config={"Cmd": ["x"]}),
        rebuild=BuildResult(ok=True, tag=f"t:{label}r", seconds=rebuild, builder="buildkit", steps=steps),
        probe="app.py",
    )


def test_reports_render_the_same_facts() -> None:
    result = Verification(
        original=_measurement("original", 200_000_000, 8.0), fixed=_measurement("fixed", 150_000_000, 1.0)
    )
    result.fixes = [("DOPT001", "merge apt-get update and install", 3)]
    text = to_text(result)
    assert "200.0 MB" in text and "150.0 MB" in text and "-25%" in text and "1/2 steps cached" in text
    assert text.rstrip().endswith("OK: the fixed Dockerfile is no worse and behaves the same")
    markdown = to_markdown(result)
    assert "| image size | 200.0 MB | 150.0 MB | -25% |" in markdown and "`DOPT001`" in markdown
    data = json.loads(to_json(result))
    assert data == to_dict(result) | {"config_changes": []}
    assert data["status"] == "ok" and data["fixed"]["rebuild_seconds"] == 1.0


def test_small_helpers() -> None:
    assert format_bytes(999) == "999 B" and format_bytes(1_500_000) == "1.5 MB"
    assert smoke_for("FROM x\nEXPOSE 5000\n") == "curl -fsS http://127.0.0.1:5000/"
    assert smoke_for("FROM x\n") is None
    changes = config_changes({"Cmd": ["a"], "Env": ["B=1", "A=1"]}, {"Cmd": ["b"], "Env": ["A=1", "B=1"]})
    assert [(c.key, c.before, c.after) for c in changes] == [("Cmd", ["a"], ["b"])]
