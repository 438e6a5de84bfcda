"""Behaviour of the cache-order rules (DO300, DO301) and the build-context reader they share.

* ``.dockerignore`` matching against Docker's documented semantics and the cases of
  ``moby/patternmatcher``'s own test table;
* pip requirement files: includes followed relative to the including file, lines that need the
  source tree, missing includes;
* where manifests go: destinations resolved against the WORKDIR in force;
* the rule end to end: no context means no fix, every fixture is stable when fixed again with its
  real context, line endings and untouched text are kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dopt.optimizer.pipeline import Result, run
from dopt.optimizer.syntax import decode
from dopt.transforms._context import (
    BuildContext,
    DockerIgnore,
    IgnoreFileError,
    go_clean,
    parse_requirements,
    read_ignore_lines,
    resolve_requirements,
)
from dopt.transforms.dockerignore import DockerignoreGaps
from dopt.transforms.install_before_copy import InstallBeforeCopy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rules"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _fix(text: str, context: Path | None, *, unsafe: bool = False, path: str | None = None) -> Result:
    where = path or str((context or Path("/nonexistent")) / "Dockerfile")
    return run(text, [InstallBeforeCopy()], unsafe_fixes=unsafe, path=where, context_dir=context)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root


# ----------------------------------------------------------------------------------------------
# .dockerignore matching
# ----------------------------------------------------------------------------------------------

# moby/patternmatcher's TestMatches table (pattern, path, excluded), checked with MatchesOrParentMatches.
PATTERNMATCHER_CASES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),
    ("**/", "file/", True),
    ("**", "/", True),
    ("**/", "/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]  # fmt: skip

PATTERNMATCHER_MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["*"], "fileutils.go", True),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "path", "excluded"), PATTERNMATCHER_CASES)
def test_patternmatcher_table(pattern: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.from_patterns([pattern]).matches(path) is excluded


@pytest.mark.parametrize(("patterns", "path", "excluded"), PATTERNMATCHER_MULTI)
def test_patternmatcher_multi_pattern_table(patterns: list[str], path: str, excluded: bool) -> None:
    assert DockerIgnore.from_patterns(patterns).matches(path) is excluded


def test_documented_example_every_markdown_but_readmes() -> None:
    # docs.docker.com "Exceptions": the last matching line decides.
    ignore = DockerIgnore.parse("*.md\n!README*.md\nREADME-secret.md\n")
    assert ignore.ignores("CHANGES.md")
    assert not ignore.ignores("README.md")
    assert not ignore.ignores("README-public.md")
    assert ignore.ignores("README-secret.md")
    reordered = DockerIgnore.parse("*.md\nREADME-secret.md\n!README*.md\n")
    assert not reordered.ignores("README-secret.md")


def test_documented_example_single_star_and_question_mark() -> None:
    ignore = DockerIgnore.parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n")
    assert ignore.ignores("somedir/temporary.txt")
    assert ignore.ignores("somedir/temp")
    assert ignore.ignores("somedir/subdir/temporary.txt")
    assert ignore.ignores("tempa")
    assert not ignore.ignores("temp")  # `?` needs exactly one character
    assert not ignore.ignores("temporary.txt")  # `*/temp*` needs a folder in front
    assert not ignore.ignores("a/b/c/temp")  # `*` never crosses `/`
    assert not ignore.ignores("# comment")


def test_double_star_matches_any_number_of_folders() -> None:
    ignore = DockerIgnore.parse("**/*.go\n")
    assert ignore.ignores("main.go")
    assert ignore.ignores("cmd/server/main.go")
    assert not ignore.ignores("main.gox")


def test_lines_are_trimmed_cleaned_and_lose_a_leading_slash() -> None:
    assert read_ignore_lines("\ufeff/foo/\n  bar/../baz  \n! ./qux\n#x\n \n./\n/\n") == [
        (1, "foo"),
        (2, "baz"),
        (3, "!qux"),
        (6, "."),
        (7, "/"),
    ]
    ignore = DockerIgnore.parse("/node_modules\n")
    assert ignore.ignores("node_modules/x/index.js")
    assert not ignore.ignores("web/node_modules/x/index.js")
    assert not DockerIgnore.parse("/\n").ignores("anything")


def test_a_comment_must_start_the_line() -> None:
    # ReadAll skips lines starting with "#" before trimming; " #x" is a pattern named "#x".
    ignore = DockerIgnore.parse(" #x\n")
    assert ignore.ignores("#x")


def test_a_parent_folder_match_excludes_everything_below_it_unless_re_included() -> None:
    ignore = DockerIgnore.parse("build\n!build/keep.txt\n")
    assert ignore.ignores("build/out/app")
    assert not ignore.ignores("build/keep.txt")
    assert ignore.deciding_pattern("build/out/app") == ignore.patterns[0]


def test_the_context_root_is_never_excluded() -> None:
    assert not DockerIgnore.parse("**\n").ignores(".")
    assert DockerIgnore.parse("**\n").ignores("a")


def test_bad_patterns_are_rejected_as_docker_rejects_them() -> None:
    with pytest.raises(IgnoreFileError):
        DockerIgnore.parse("!\n")
    with pytest.raises(IgnoreFileError):
        DockerIgnore.parse("[\n")


def test_go_clean() -> None:
    assert go_clean("") == "."
    assert go_clean("a//b/./c/..") == "a/b"
    assert go_clean("../../x") == "../../x"
    assert go_clean("/../x") == "/x"
    assert go_clean("//a/") == "/a"


def test_build_context_hides_ignored_files(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": "a", "keep/b.txt": "b", "drop/c.txt": "c", ".dockerignore": "drop\n*.txt\n!keep\n"})
    context = BuildContext(tmp_path, DockerIgnore.parse((tmp_path / ".dockerignore").read_text()))
    assert not context.is_file("a.txt")
    assert context.is_file("keep/b.txt")
    assert not context.is_dir("drop")
    assert context.on_disk("drop/c.txt")
    assert context.read_text("keep/b.txt") == "b"
    assert context.read_text("a.txt") is None
    assert context.listdir(".") == [".dockerignore", "keep"]
    assert context.is_file("/keep/../keep/b.txt")  # COPY sources are cleaned inside the context


# ----------------------------------------------------------------------------------------------
# pip requirement files
# ----------------------------------------------------------------------------------------------


def _reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda path: files.get(path)


def test_includes_are_relative_to_the_including_file() -> None:
    files = {
        "/app/requirements.txt": "-r requirements/base.txt\n-c constraints.txt\nflask\n",
        "/app/requirements/base.txt": "--requirement=common.txt  # shared\n-rextra.txt\n",
        "/app/requirements/common.txt": "-c ../constraints.txt\n-r https://example.com/remote.txt\nrequests\n",
        "/app/requirements/extra.txt": "-r common.txt\n",  # a cycle back: read once
        "/app/constraints.txt": "urllib3<3\n",
    }
    result = resolve_requirements(_reader(files), ["requirements.txt"], "/app")
    assert result.files == [
        "/app/requirements.txt",
        "/app/requirements/base.txt",
        "/app/constraints.txt",
        "/app/requirements/common.txt",
        "/app/requirements/extra.txt",
    ]
    assert result.missing == [] and result.needs_source == []


def test_lines_that_need_the_source_tree() -> None:
    files = {
        "/app/r.txt": (
            "-e .\n"
            "-e git+https://github.com/pallets/flask#egg=flask\n"
            "./libs/util\n"
            "pkg @ file:///app/vendor/pkg.whl\n"
            "wheels/thing-1.0-py3-none-any.whl\n"
            "--find-links ./wheels\n"
            "--find-links https://download.example.com\n"
            "name @ https://example.com/name.tar.gz\n"
            "requests[socks]>=2; python_version > '3.8'\n"
        )
    }
    result = resolve_requirements(_reader(files), ["r.txt"], "/app")
    reasons = [(need.line, need.reason) for need in result.needs_source]
    assert reasons == [
        (1, "`-e .` installs from the source tree"),
        (3, "`./libs/util` is a local path"),
        (4, "`pkg` is a local path"),
        (5, "`wheels/thing-1.0-py3-none-any.whl` is a local path"),
        (6, "`--find-links ./wheels` reads a local folder"),
    ]


def test_missing_includes_name_the_line_that_includes_them() -> None:
    files = {"/app/r.txt": "flask\n-r dev.txt\n"}
    result = resolve_requirements(_reader(files), ["r.txt", "other.txt"], "/app")
    assert [(m.path, m.included_by) for m in result.missing] == [
        ("/app/other.txt", None),
        ("/app/dev.txt", ("/app/r.txt", 2)),
    ]


def test_continuation_lines_and_comments() -> None:
    lines = parse_requirements("flask==3.0 \\\n    --hash=sha256:abc  # pinned\n# only a comment\n-r  more.txt\n")
    assert [(entry.kind, entry.value, entry.line) for entry in lines] == [
        ("package", "flask==3.0     --hash=sha256:abc", 1),
        ("requirement", "more.txt", 4),
    ]


# ----------------------------------------------------------------------------------------------
# Destinations and the WORKDIR in force
# ----------------------------------------------------------------------------------------------


def test_without_a_workdir_the_manifest_copy_is_relative_to_the_base_images(tmp_path: Path) -> None:
    _tree(tmp_path, {"requirements.txt": "flask\n"})
    result = _fix("FROM python:3.11\nCOPY . .\nRUN pip install -r requirements.txt\n", tmp_path)
    assert result.output == (
        "FROM python:3.11\nCOPY requirements.txt ./\nRUN pip install -r requirements.txt\nCOPY . .\n"
    )


def test_absolute_requirement_path_under_an_absolute_destination(tmp_path: Path) -> None:
    _tree(tmp_path, {"requirements.txt": "flask\n"})
    text = "FROM python:3.11\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n"
    assert _fix(text, tmp_path).output == (
        "FROM python:3.11\nCOPY requirements.txt /app/\nRUN pip install -r /app/requirements.txt\nCOPY . /app\n"
    )


def test_destination_from_a_variable_and_a_relative_workdir(tmp_path: Path) -> None:
    _tree(tmp_path, {"web/package.json": "{}\n", "web/package-lock.json": "{}\n"})
    text = "FROM node:18\nENV APP=/srv/app\nWORKDIR $APP\nCOPY . .\nWORKDIR web\nRUN npm ci\n"
    result = _fix(text, tmp_path, unsafe=True)
    # The copy's destination is relative and a WORKDIR lies between: dopt asks for an absolute one.
    assert not result.changed
    assert "write it as `/srv/app`" in result.remaining[0].message
    absolute = text.replace("COPY . .", "COPY . $APP")
    fixed = _fix(absolute, tmp_path, unsafe=True).output
    assert fixed == (
        "FROM node:18\nENV APP=/srv/app\nWORKDIR $APP\nWORKDIR web\n"
        "COPY web/package.json web/package-lock.json ./\nRUN npm ci\nCOPY . $APP\n"
    )


def test_manifests_in_two_folders_get_one_copy_each(tmp_path: Path) -> None:
    _tree(tmp_path, {"svc/requirements.txt": "-r ../shared/base.txt\n", "shared/base.txt": "flask\n"})
    text = "FROM python:3.11\nWORKDIR /app\nCOPY . .\nRUN pip install -r svc/requirements.txt\n"
    assert _fix(text, tmp_path).output == (
        "FROM python:3.11\nWORKDIR /app\nCOPY svc/requirements.txt svc/\nCOPY shared/base.txt shared/\n"
        "RUN pip install -r svc/requirements.txt\nCOPY . .\n"
    )


def test_a_manifest_name_with_a_space_uses_the_json_form(tmp_path: Path) -> None:
    _tree(tmp_path, {"requirements.txt": '-r "my reqs.txt"\n', "my reqs.txt": "flask\n"})
    text = "FROM python:3.11\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n"
    output = _fix(text, tmp_path).output
    assert 'COPY ["requirements.txt", "my reqs.txt", "./"]\n' in output


# ----------------------------------------------------------------------------------------------
# The rule end to end
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [None, Path("/nonexistent/dopt-context")])
def test_without_a_context_there_are_findings_but_no_fix(context: Path | None) -> None:
    text = "FROM node:18\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"
    result = run(text, [InstallBeforeCopy()], path="Dockerfile", context_dir=context, unsafe_fixes=True)
    assert not result.changed
    [finding] = result.remaining
    assert finding.fix is None
    assert "cannot tell which manifest files exist" in finding.message
    assert "--context" in finding.message


def test_a_build_without_a_manifest_install_is_not_reported(tmp_path: Path) -> None:
    _tree(tmp_path, {"main.go": "package main\n"})  # no go.mod: GOPATH mode, nothing to download
    result = _fix("FROM golang:1.19\nWORKDIR /src\nCOPY . .\nRUN go build -o /app .\n", tmp_path)
    assert result.remaining == [] and not result.changed


def _fixture_cases() -> list[Path]:
    return sorted(FIXTURES.glob("DO300/*.Dockerfile"))


@pytest.mark.parametrize("case", _fixture_cases(), ids=lambda p: p.name)
def test_fixing_again_with_the_real_context_changes_nothing(case: Path) -> None:
    context = case.with_name(case.name.removesuffix(".Dockerfile") + ".context")
    context = context if context.is_dir() else case.parent
    text = decode(case.read_bytes())
    for unsafe in (False, True):
        first = _fix(text, context, unsafe=unsafe)
        assert not first.rejected, first.rejected
        again = _fix(first.output, context, unsafe=unsafe)
        assert again.output == first.output
        fixable = [f for f in again.remaining if f.fix is not None and (unsafe or f.fix.safety == "safe")]
        assert not fixable, "a fixed file still has a finding with a fix this mode applies"


def test_line_endings_are_kept() -> None:
    case = FIXTURES / "DO300" / "add-crlf.Dockerfile"
    text = decode(case.read_bytes())
    output = _fix(text, case.with_name("add-crlf.context")).output
    assert output != text
    assert output.count("\r\n") == output.count("\n")


def test_hand_ordered_dockerfiles_are_left_alone() -> None:
    for example in ("python-flask", "node-express", "go-server"):
        for name in ("Dockerfile.safe", "Dockerfile.expert"):
            path = EXAMPLES / example / name
            result = _fix(path.read_text(), path.parent, path=str(path))
            assert result.remaining == [], (example, name, [f.message for f in result.remaining])


def test_the_examples_are_fixed_safely() -> None:
    expected_copies = {
        "python-flask": "COPY requirements.txt ./\nRUN pip install -r requirements.txt\n",
        "node-express": "COPY package.json package-lock.json ./\nRUN npm install\n",
        "go-server": "COPY go.mod ./\nRUN go mod download\n",
    }
    for example, block in expected_copies.items():
        path = EXAMPLES / example / "Dockerfile"
        result = _fix(path.read_text(), path.parent, path=str(path))
        assert block in result.output, example
        assert result.output.index(block) < result.output.index("COPY . .")
        assert result.remaining == []


def test_unsafe_fixes_say_what_they_assume(tmp_path: Path) -> None:
    _tree(tmp_path, {"package.json": '{"scripts": {"prepare": "husky install"}}\n'})
    text = "FROM node:18\nWORKDIR /app\nCOPY . .\nRUN npm install\n"
    safe = _fix(text, tmp_path)
    assert not safe.changed
    [finding] = safe.remaining
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    assert "`prepare`" in finding.message and "--ignore-scripts" in finding.message
    assert _fix(text, tmp_path, unsafe=True).output == (
        "FROM node:18\nWORKDIR /app\nCOPY package.json ./\nRUN npm install --ignore-scripts\nCOPY . .\n"
        "RUN npm install\n"
    )


@pytest.mark.parametrize(
    ("run_line", "early", "late"),
    [
        ("RUN set -ex && npm ci && npm run build", "RUN set -ex && npm ci", "RUN set -ex && npm run build"),
        ("RUN npm ci; npm run build", "RUN npm ci", "RUN npm ci; npm run build"),
        (
            "RUN pip install -U pip && pip install -r requirements.txt && pip install -e .",
            "RUN pip install -U pip && pip install -r requirements.txt",
            "RUN pip install -e .",
        ),
    ],
)
def test_what_stays_in_the_original_run(tmp_path: Path, run_line: str, early: str, late: str) -> None:
    _tree(tmp_path, {"requirements.txt": "flask\n", "package.json": '{"name": "x"}\n'})
    output = _fix(f"FROM x\nWORKDIR /app\nCOPY . .\n{run_line}\n", tmp_path).output
    assert output.endswith(f"{early}\nCOPY . .\n{late}\n"), output


def test_steps_between_copy_and_install_that_use_the_copy_block_the_fix(tmp_path: Path) -> None:
    _tree(tmp_path, {"requirements.txt": "flask\n", "Makefile": "all:\n"})
    text = "FROM python:3.11\nWORKDIR /app\nCOPY . .\nRUN make\nRUN pip install -r requirements.txt\n"
    result = _fix(text, tmp_path, unsafe=True)
    assert not result.changed
    assert "may read the copied files" in result.remaining[0].message


def test_a_cd_in_the_install_run_blocks_the_fix(tmp_path: Path) -> None:
    _tree(tmp_path, {"ui/package.json": "{}\n"})
    text = "FROM node:18\nWORKDIR /app\nCOPY . .\nRUN cd ui && npm ci\n"
    result = _fix(text, tmp_path, unsafe=True)
    assert not result.changed
    [finding] = result.remaining
    assert finding.message.endswith(
        "not fixed: the RUN changes folder with `cd`, so dopt cannot tell where the install runs"
    )


# ----------------------------------------------------------------------------------------------
# DO301
# ----------------------------------------------------------------------------------------------


def _report(context: Path, text: str = "FROM python:3.11\nCOPY . /app\n") -> list[str]:
    result = run(text, [DockerignoreGaps()], fix=False, path=str(context / "Dockerfile"), context_dir=context)
    return [f.message for f in result.remaining]


def test_a_git_folder_is_reported_with_the_line_that_excludes_it(tmp_path: Path) -> None:
    _tree(tmp_path, {".git/HEAD": "ref\n", "app.py": "\n", ".dockerignore": "*.log\n"})
    [message] = _report(tmp_path)
    assert "version-control history: .git" in message
    assert "append these lines to .dockerignore: `.git`" in message
    assert "does not write .dockerignore" in message
    (tmp_path / ".dockerignore").write_text("*.log\n.git\n")
    assert _report(tmp_path) == []


def test_an_exception_that_re_includes_a_secret_is_reported(tmp_path: Path) -> None:
    _tree(tmp_path, {".env": "X=1\n", ".dockerignore": ".env*\n!.env\n"})
    [message] = _report(tmp_path)
    assert "`.env`" in message


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    _tree(tmp_path, {"id_rsa": "KEY\n", ".dockerignore": "id_rsa\n", "prod.Dockerfile.dockerignore": "*.md\n"})
    text = "FROM python:3.11\nCOPY . /app\n"
    result = run(text, [DockerignoreGaps()], fix=False, path=str(tmp_path / "prod.Dockerfile"), context_dir=tmp_path)
    [finding] = result.remaining
    assert "prod.Dockerfile.dockerignore lets in secrets: id_rsa" in finding.message


def test_only_whole_context_copies_are_checked(tmp_path: Path) -> None:
    _tree(tmp_path, {".env": "X=1\n", "src/app.py": "\n"})
    assert _report(tmp_path, "FROM python:3.11\nCOPY src /app\n") == []
    assert len(_report(tmp_path, "FROM python:3.11\nCOPY src /app\nADD ./ /app\n")) == 1


def test_python_caches_and_virtualenvs_anywhere(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pyproject.toml": "[project]\n",
            "src/pkg/__pycache__/mod.cpython-311.pyc": "",
            ".venv/pyvenv.cfg": "home = /usr/bin\n",
            "tools/env/pyvenv.cfg": "home = /usr/bin\n",
            ".dockerignore": "*.md\n",
        },
    )
    [message] = _report(tmp_path)
    assert "`**/__pycache__`" in message and "`.venv`" in message and "`tools/env`" in message


def test_no_context_means_no_report() -> None:
    result = run("FROM a\nCOPY . .\n", [DockerignoreGaps()], fix=False, context_dir=None)
    assert result.remaining == []
