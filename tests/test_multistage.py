"""The multi-stage conversion (DO601-DO607): templates, the analysis, the rewrite and its invariant.

The fixtures under tests/fixtures/rules/DO60*/ cover one case per ecosystem and the traps; these
tests cover what fixtures cannot: user templates, a missing build context, line endings, the
rule's own invariant and the conversion together with every other rule.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dopt.optimizer.api import check_source, fix_source
from dopt.optimizer.config import ConfigError, Settings
from dopt.optimizer.pipeline import run
from dopt.optimizer.rules import Context
from dopt.optimizer.semantic import build_model
from dopt.optimizer.syntax import Trivia, parse
from dopt.transforms import all_rules
from dopt.transforms._multistage import Analysis, MultiStageRule, load_templates, normalize_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RULES = {rule.code: rule for rule in all_rules() if rule.code.startswith("DO60")}

GO = """\
FROM golang:1.19
WORKDIR /app
COPY . .
RUN go build -o server .
EXPOSE 8080
CMD ["./server"]
"""


def _fix(text: str, context: Path | None, *codes: str, options: dict | None = None) -> tuple[str, list]:
    rules = [RULES[c] for c in codes] if codes else list(RULES.values())
    result = run(
        text,
        rules,
        unsafe_fixes=True,
        path=str((context or Path("/nonexistent")) / "Dockerfile"),
        context_dir=context or Path("/nonexistent/context"),
        options=options or {},
    )
    return result.output, result.fixed + result.remaining


def _stages(text: str) -> list[list[str]]:
    stages: list[list[str]] = []
    for ins in parse(text).instructions:
        if ins.name == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins.dump())
    return stages


@pytest.mark.parametrize(
    ("builder", "ecosystem", "runtime"),
    [
        ("golang:1.19", "go", "debian:trixie-slim"),  # no release in the tag: the newer runtime
        ("golang:1.21-bullseye", "go", "debian:bullseye-slim"),
        ("golang:1.22-alpine3.19", "go", "alpine:3.19"),
        ("node:18", "node", "node:18-slim"),
        ("node:20-bullseye", "node", "node:20-bullseye-slim"),
        ("node:lts", "node", "node:lts-slim"),
        ("node:18-slim", "node", "node:18-slim"),
        ("python:3.11", "python", "python:3.11-slim"),
        ("python:3.12-bookworm", "python", "python:3.12-slim-bookworm"),
        ("python:3.11-slim", "python", "python:3.11-slim"),
        ("maven:3.9-eclipse-temurin-17", "java", "eclipse-temurin:17-jre"),
        ("gradle:8.7-jdk21-alpine", "java", "eclipse-temurin:21-jre-alpine"),
        ("eclipse-temurin:21-jdk-jammy", "java", "eclipse-temurin:21-jre-jammy"),
        ("rust:1.75", "rust", "debian:trixie-slim"),
        ("rust:1.70-bullseye", "rust", "debian:bullseye-slim"),
        ("mcr.microsoft.com/dotnet/sdk:8.0", "dotnet", "mcr.microsoft.com/dotnet/aspnet:8.0"),
        ("mcr.microsoft.com/dotnet/sdk:8.0-alpine", "dotnet", "mcr.microsoft.com/dotnet/aspnet:8.0-alpine"),
        ("node:18", "static", "nginx:stable"),
    ],
)
def test_templates_map_builder_images_to_runtime_images(builder: str, ecosystem: str, runtime: str) -> None:
    image = load_templates({})[ecosystem].image_for(normalize_image(builder) or "")
    assert image is not None and image.runtime == runtime


@pytest.mark.parametrize("builder", ["maven:3", "golang:1.19-windowsservercore", "ubuntu:22.04", "python:3.11-windows"])
def test_images_without_a_known_runtime_are_not_matched(builder: str) -> None:
    templates = load_templates({})
    image = normalize_image(builder) or ""
    assert all(templates[e].image_for(image) is None for e in ("go", "java", "python", "node", "rust", "dotnet"))


def test_normalize_image() -> None:
    assert normalize_image("docker.io/library/python:3.11") == "python:3.11"
    assert normalize_image("golang") == "golang:latest"
    assert normalize_image("registry.example.com:5000/team/app") == "registry.example.com:5000/team/app:latest"
    assert normalize_image("python:3.11@sha256:" + "0" * 64) == "python:3.11"
    assert normalize_image("python@sha256:" + "0" * 64) is None


def test_every_ecosystem_rule_has_a_template_and_a_unique_priority() -> None:
    templates = load_templates({})
    priorities = [cls.priority for cls in MultiStageRule.registry]
    assert len(set(priorities)) == len(priorities)
    for cls in MultiStageRule.registry:
        assert templates[cls.ecosystem].data.get("images"), cls.ecosystem
        assert cls.fix_safety is not None and cls.fix_safety.value == "unsafe"


def test_the_fix_is_unsafe_only(tmp_path: Path) -> None:
    context = EXAMPLES / "go-server"
    safe = fix_source(GO, context_dir=context)
    assert len(_stages(safe.output)) == 1
    assert any(f.code == "DO601" and f.fix and f.fix.safety.value == "unsafe" for f in safe.remaining)
    unsafe = fix_source(GO, unsafe_fixes=True, context_dir=context)
    assert len(_stages(unsafe.output)) == 2


def test_go_without_a_build_context_keeps_cgo_and_copies_the_binary() -> None:
    out, findings = _fix(GO, None, "DO601")
    assert "CGO_ENABLED" not in out
    assert "COPY --from=build /app/server /app/server" in out
    assert "no build context" in findings[0].message


def test_the_runtime_stage_keeps_everything_the_container_needs(tmp_path: Path) -> None:
    (tmp_path / "main.go").write_text('package main\nimport "C"\nfunc main() {}\n')
    (tmp_path / "go.mod").write_text("module example.com/svc\n")
    text = """\
ARG GO_VERSION=1.19
FROM golang:${GO_VERSION}
ARG BUILD_ID
ENV PORT=9000 MODE=prod
LABEL org.opencontainers.image.source="https://example.com/svc"
WORKDIR /svc
COPY . .
RUN go build -o /usr/local/bin/svc . && useradd --system svc
USER svc
VOLUME ["/data"]
EXPOSE 9000/tcp
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s CMD ["svc", "health"]
ONBUILD RUN echo child
ENTRYPOINT ["svc"]
CMD ["serve"]
"""
    out, findings = _fix(text, tmp_path, "DO601")
    _, runtime = _stages(out)
    original = [ins.dump() for ins in parse(text).instructions[1:]]  # the global ARG stays before FROM
    assert out.startswith("ARG GO_VERSION=1.19\nFROM golang:${GO_VERSION} AS build\n")
    for dump in original[1:]:
        if not dump.startswith(("run", "copy")):
            assert dump in runtime, dump
    assert "CGO_ENABLED" not in out  # the code imports "C"
    assert 'run "useradd --system svc"' in runtime
    assert runtime.index('run "useradd --system svc"') < runtime.index('user "svc"')
    assert runtime[-1] == 'cmd "serve"'
    assert "keeps cgo" in findings[0].message


def test_comments_directives_and_line_endings_are_kept(tmp_path: Path) -> None:
    text = (
        "# escape=`\r\n"
        "# The service image.\r\n"
        "FROM golang:1.19\r\n"
        "WORKDIR /app\r\n"
        "COPY . .\r\n"
        "# compile\r\n"
        "RUN go build -o server .\r\n"
        "\r\n"
        "# the port the server listens on\r\n"
        "EXPOSE 8080\r\n"
        'CMD ["./server"]\r\n'
        "# trailing comment\r\n"
    )
    (tmp_path / "main.go").write_text("package main\nfunc main() {}\n")
    (tmp_path / "go.mod").write_text("module example.com/server\n")
    out, _ = _fix(text, tmp_path, "DO601")
    assert out.startswith("# escape=`\r\n# The service image.\r\nFROM golang:1.19 AS build\r\n")
    assert out.endswith('# the port the server listens on\r\nEXPOSE 8080\r\nCMD ["./server"]\r\n# trailing comment\r\n')
    assert "\n" not in out.replace("\r\n", "")
    assert "# compile\r\nRUN go build -o server .\r\n" in out


def test_already_multi_stage_unknown_and_unresolved_images_are_left_alone() -> None:
    for text in (
        "FROM golang:1.19 AS build\nRUN go build -o /s .\nFROM scratch\nCOPY --from=build /s /s\n",
        "FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y golang && go build -o /s .\n",
        "ARG IMAGE\nFROM ${IMAGE}\nRUN go build -o /s .\n",
        "FROM scratch\nCOPY app /app\n",
    ):
        out, findings = _fix(text, None)
        assert out == text and not findings, text


def test_user_templates_extend_the_built_in_ones(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "go.toml").write_text(
        'ecosystem = "go"\n'
        "[[images]]\n"
        "match = '^golang:1\\.19$'\n"
        'runtime = "registry.example.com/base/debian:12-slim"\n'
        'static-runtime = "scratch"\n'
        'packages = "apt"\n'
        'workdir = "/go"\n'
    )
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "main.go").write_text("package main\nfunc main() {}\n")
    (context / "go.mod").write_text("module example.com/server\n")
    options = {"multistage-templates": str(folder)}
    out, _ = _fix(GO, context, "DO601", options=options)
    assert _stages(out)[1][0] == 'from "scratch"'
    assert "ca-certificates.crt" in out  # the built-in runtime-files still apply
    # A shell-form CMD cannot run in an image without a shell: the regular runtime, cgo as it was.
    shell_form = GO.replace('CMD ["./server"]', "CMD ./server --port 8080")
    out, _ = _fix(shell_form, context, "DO601", options=options)
    assert _stages(out)[1][0] == 'from "registry.example.com/base/debian:12-slim"'
    assert "CGO_ENABLED" not in out
    # The cgo-free check still decides: with cgo the non-static runtime is used.
    (context / "main.go").write_text('package main\nimport "C"\nfunc main() {}\n')
    out, _ = _fix(GO, context, "DO601", options=options)
    assert _stages(out)[1][0] == 'from "registry.example.com/base/debian:12-slim"'


def test_user_templates_are_found_from_the_dockerfile_folder(tmp_path: Path) -> None:
    (tmp_path / "dopt-templates").mkdir()
    (tmp_path / "dopt-templates" / "python.toml").write_text(
        'ecosystem = "python"\n[[images]]\nmatch = \'^python:3\\.11$\'\nruntime = "python:3.11-slim-bookworm"\n'
    )
    project = tmp_path / "services" / "api"
    project.mkdir(parents=True)
    templates = load_templates({"multistage-templates": "dopt-templates"}, str(project / "Dockerfile"))
    image = templates["python"].image_for("python:3.11")
    assert image is not None and image.runtime == "python:3.11-slim-bookworm"
    assert templates["python"].image_for("python:3.12") is not None  # the built-in rules still follow


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("ecosystem = 3\n", "needs `ecosystem"),
        ('ecosystem = "go"\n[[images]]\nruntime = "x"\n', "needs a `match`"),
        ('ecosystem = "go"\n[[images]]\nmatch = "(("\n', "bad `match`"),
        ("ecosystem = \n", "invalid multi-stage template"),
    ],
)
def test_bad_user_templates_are_configuration_errors(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=error):
        load_templates({"multistage-templates": str(path)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_templates({"multistage-templates": str(tmp_path / "missing")})


def test_settings_pass_the_templates_option(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "node.toml").write_text(
        'ecosystem = "node"\n[[images]]\nmatch = \'^node:18$\'\nruntime = "node:18-bookworm-slim"\npackages = "apt"\n'
    )
    settings = Settings(rule_options={"multistage-templates": str(folder)})
    text = (EXAMPLES / "node-express" / "Dockerfile").read_text()
    result = fix_source(text, unsafe_fixes=True, context_dir=EXAMPLES / "node-express", settings=settings)
    assert "FROM node:18-bookworm-slim" in result.output


def test_verify_refuses_a_runtime_stage_that_loses_the_command() -> None:
    rule = RULES["DO601"]
    before = parse(GO)
    good = parse(
        "FROM golang:1.19 AS build\nWORKDIR /app\nCOPY . .\nRUN go build -o server .\n\n"
        "FROM debian:bookworm-slim\nWORKDIR /app\nCOPY --from=build /app/server /app/server\n"
        'EXPOSE 8080\nCMD ["./server"]\n'
    )
    assert rule.verify(before, good) is None
    no_cmd = parse(good.source.replace('CMD ["./server"]\n', ""))
    assert "does not keep" in (rule.verify(before, no_cmd) or "")
    no_copy = parse(good.source.replace("COPY --from=build /app/server /app/server\n", ""))
    assert "copies nothing" in (rule.verify(before, no_copy) or "")
    lost_run = parse(good.source.replace("RUN go build -o server .\n", ""))
    assert "lost or reordered" in (rule.verify(before, lost_run) or "")
    single = parse(GO.replace("golang:1.19", "debian:bookworm-slim"))
    assert "not a multi-stage" in (rule.verify(before, single) or "")


@pytest.mark.parametrize("example", ["go-server", "node-express", "python-flask"])
def test_examples_convert_with_every_rule_and_a_second_run_changes_nothing(example: str) -> None:
    folder = EXAMPLES / example
    text = (folder / "Dockerfile").read_text()
    first = fix_source(text, unsafe_fixes=True, context_dir=folder, path=str(folder / "Dockerfile"))
    assert not [r for r in first.rejected if r.finding.code.startswith("DO60")], first.rejected
    assert len(_stages(first.output)) == 2
    again = fix_source(first.output, unsafe_fixes=True, context_dir=folder, path=str(folder / "Dockerfile"))
    assert again.output == first.output
    assert not [f for f in check_source(first.output, context_dir=folder).remaining if f.code.startswith("DO60")]


def test_the_message_says_what_moves() -> None:
    folder = EXAMPLES / "python-flask"
    result = check_source((folder / "Dockerfile").read_text(), context_dir=folder)
    (finding,) = [f for f in result.remaining if f.code == "DO603"]
    assert "python:3.11-slim" in finding.message
    assert "/opt/venv (the virtualenv" in finding.message
    assert "installs curl" in finding.message
    assert finding.fix is not None and "split into stage 'build'" in finding.fix.description


def test_the_context_is_seen_through_dockerignore(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("**/*.md\nsecret/\n!docs/keep.md\nnode_modules\n")
    for name in ("README.md", "docs/a.md", "docs/keep.md", "secret/key", "app/node_modules/x/y.js", "src/main.go"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    doc = parse("FROM golang:1.19\nCOPY . .\nRUN go build -o /app .\n")
    stage = build_model(doc).stages[0]
    files = Analysis(Context(doc, str(tmp_path / "Dockerfile"), tmp_path), load_templates({}), stage, "golang").files
    assert sorted(files.files()) == [".dockerignore", "app/node_modules/x/y.js", "docs/keep.md", "src/main.go"]
    assert files.glob("docs/*.md") == ["docs/keep.md"]
    assert files.read_text("../../etc/passwd") is None
    missing = Analysis(Context(doc, "Dockerfile", tmp_path / "missing"), load_templates({}), stage, "golang")
    assert missing.files.available is False


@pytest.mark.parametrize(
    ("image", "runtime", "packages"),
    [
        ("node:alpine", "node:alpine", "apk"),  # there is no node:alpine-slim
        ("node:18-alpine", "node:18-alpine", "apk"),
        ("node:18", "node:18-slim", "apt"),
        ("node:lts", "node:lts-slim", "apt"),
    ],
)
def test_node_runtime_images_exist(image: str, runtime: str, packages: str) -> None:
    found = load_templates({})["node"].image_for(normalize_image(image))
    assert found is not None and (found.runtime, found.packages) == (runtime, packages)


def _changes(script: str) -> list[tuple[str, str | None]]:
    doc = parse(f"FROM golang:1.22\nWORKDIR /srv/app\nRUN {script}\n")
    analysis = Analysis(Context(doc, "Dockerfile", None), load_templates({}), build_model(doc).stages[0], "golang")
    analysis.scan("/go")
    return [(c.kind, c.path) for c in analysis.file_changes()]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("git clone --depth 1 --branch v1 https://x.org/y.git /src", [("write", "/src")]),
        ("git clone -b v1 --single-branch https://x.org/app.git", [("write", "/srv/app/app")]),
        ("curl -fsSLo /usr/local/bin/tini https://x.org/tini", [("write", "/usr/local/bin/tini")]),
        ("curl -H 'Accept: x' --retry 3 -O https://x.org/a/app.tgz", [("write", "/srv/app/app.tgz")]),
        ("curl -fsSL https://x.org/install.sh -o- | sh", []),
        ("wget -qO- https://x.org/key | apt-key add -", []),
        ("wget -q --tries 3 'https://x.org/app.tar.gz?raw=1'", [("write", "/srv/app/app.tar.gz")]),
        ("tar xzf app.tar.gz -C /opt/app", [("write", "/opt/app")]),
        ("cd /tmp && tar -xzf app.tgz", [("write", "/tmp")]),
        ("install -m 0755 app /usr/local/bin/", [("write", "/usr/local/bin/app")]),
        ("mv -t /usr/local/bin a b", [("move", "/usr/local/bin/a"), ("move", "/usr/local/bin/b")]),
        ("mkdir -m 755 out && cp -r dist out", [("write", "/srv/app/out/dist")]),
        ("sed -i -e s/a/b/ conf.ini", [("write", "/srv/app/conf.ini")]),
        ("cd build && rm -rf cache", [("remove", "/srv/app/build/cache")]),
        ("(cd sub && rm x) && rm y", [("remove", "/srv/app/sub/x"), ("remove", "/srv/app/y")]),
    ],
)
def test_file_changes_know_which_options_take_a_value(script: str, expected: list[tuple[str, str]]) -> None:
    assert _changes(script) == expected


def test_the_go_binary_is_copied_from_where_a_later_run_moved_it() -> None:
    text = GO.replace("RUN go build -o server .", "RUN go build -o server . && mv server /usr/local/bin/app")
    out, _ = _fix(text.replace('CMD ["./server"]', 'CMD ["app"]'), None, "DO601")
    assert "COPY --from=build /usr/local/bin/app /usr/local/bin/app" in out
    assert "/app/server" not in out.split("FROM debian")[1]


def test_a_binary_removed_after_the_build_is_not_copied() -> None:
    text = GO.replace("RUN go build -o server .", "RUN go build -o server . && ./server --selftest && rm server")
    out, findings = _fix(text, None, "DO601")
    assert out == text
    assert "runs ./server, which the runtime stage would not have" in findings[0].message


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"


@pytest.mark.parametrize("case", sorted(FIXTURES.glob("DO60*/*.Dockerfile")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_comment_or_blank_line_is_lost_and_labels_end_in_the_runtime_stage(case: Path) -> None:
    text = case.read_text()
    context = case.with_name(case.name.removesuffix(".Dockerfile") + ".context")
    out, _ = _fix(text, context if context.is_dir() else case.parent, case.parent.name)
    doc = parse(text)
    trivia = Counter(text[t.start : t.end].rstrip("\n") for t in doc.nodes if isinstance(t, Trivia))
    left = Counter(out.splitlines())
    assert all(left[line] >= count for line, count in trivia.items()), "a comment or blank line was dropped"
    labels = [ins.dump() for ins in doc.instructions if ins.name == "LABEL"]
    assert all(label in _stages(out)[-1] for label in labels)


def test_the_comment_above_a_replaced_command_is_kept(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"scripts": {"build": "vite build"}, "devDependencies": {"vite": "5"}}')
    text = (
        "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci && npm run build\n# Serve the site\nCMD npx serve -s dist\n"
    )
    out, _ = _fix(text, tmp_path, "DO607")
    assert out.endswith('# Serve the site\nCMD ["nginx", "-g", "daemon off;"]\n')


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("python:3.11-slim-bullseye", "bullseye"),
        ("python:3.11-slim", "bookworm|trixie"),  # no release in the tag: either current one
        ("python:3.13-slim-trixie", "trixie"),
        ("node:20-bullseye-slim", "bullseye"),
        ("node:22-trixie", "trixie"),
    ],
)
def test_a_slim_builder_keeps_the_release_its_tag_names(image: str, release: str) -> None:
    ecosystem = image.split(":")[0]
    runtime = load_templates({})[ecosystem].image_for(image)
    assert runtime is not None and runtime.release == release


def test_analyses_do_not_outlive_their_document() -> None:
    # The language server and batch workers fix file after file in one process: the multi-stage
    # analysis of a document must go with it, not pile up.
    import gc

    from dopt.optimizer.syntax import Document

    example = EXAMPLES / "python-flask"
    text = (example / "Dockerfile").read_text()

    def live_documents() -> int:
        gc.collect()
        return sum(isinstance(o, Document) for o in gc.get_objects())

    _fix(text, example)  # warm-up: caches that live for the process fill here
    before = live_documents()
    for _ in range(5):
        _fix(text, example)
    assert live_documents() == before


def test_static_go_build_compiles_the_standard_library_before_the_sources(tmp_path: Path) -> None:
    (tmp_path / "main.go").write_text('package main\nimport "fmt"\nfunc main() { fmt.Println("hi") }\n')
    (tmp_path / "go.mod").write_text("module example.com/server\n")
    out, _ = _fix(GO, tmp_path, "DO601")
    runtime = _stages(out)[-1]
    assert runtime[0] == 'from "scratch"'
    lines = out.splitlines()
    assert lines.index("RUN go build std") < lines.index("COPY . .")  # a cached layer: code changes skip it
    assert "ENV GOFLAGS=-ldflags=-s" in lines
    # GOFLAGS of the file's own (-mod=vendor would break `go build std` outside the module) is left
    # alone, and so is the standard library's compilation.
    vendored = GO.replace("WORKDIR /app", "WORKDIR /app\nENV GOFLAGS=-mod=vendor")
    out, _ = _fix(vendored, tmp_path, "DO601")
    assert "go build std" not in out and "-ldflags=-s" not in out
    assert _stages(out)[1][0] == 'from "scratch"'


@pytest.mark.parametrize(
    ("image", "dev", "expected"),
    [
        ("python:3.12", "libpq-dev", "libpq5"),  # the same name in bookworm and trixie
        ("python:3.12", "libhdf5-dev", None),  # libhdf5-103-1 in bookworm, libhdf5-310 in trixie
        ("python:3.12-bookworm", "libhdf5-dev", "libhdf5-103-1"),
        ("python:3.12-trixie", "libhdf5-dev", "libhdf5-310"),
    ],
)
def test_runtime_libraries_follow_the_release_the_tag_names(image: str, dev: str, expected: str | None) -> None:
    text = (
        f"FROM {image}\nRUN apt-get update && apt-get install -y {dev} && rm -rf /var/lib/apt/lists/*\n"
        "WORKDIR /app\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\nCMD [\"python\", \"app.py\"]\n"
    )
    out, findings = _fix(text, EXAMPLES / "python-flask", "DO603")
    if expected is None:
        assert out == text
        assert "named differently in the Debian releases" in findings[0].message
    else:
        assert f"install -y --no-install-recommends {expected}" in out
