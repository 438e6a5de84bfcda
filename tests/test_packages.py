"""Behaviour of the package-manager rules (DO210-DO237) and their shared machinery.

The snapshot fixtures under ``tests/fixtures/rules/DO2xx`` show each rule on typical files; these
tests pin down the properties every rule must have: the edit lands on the right word wherever the
command stands in the script, text that is data (quotes, comments, here-documents that feed a
command) is never touched, line continuations, CRLF line endings and the backtick escape are
kept, a second run changes nothing, and the cache-mount mode never hides files the image needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dopt.optimizer.config import Settings, matches
from dopt.optimizer.pipeline import run
from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.syntax import parse
from dopt.transforms import all_rules
from dopt.transforms._packages import PackageRule, context_file, copied_from_context, run_script
from dopt.transforms.npm_ci import lock_agreement

PACKAGE_CODES = tuple(f"DO{n}" for n in range(210, 250))
RULES = [rule for rule in all_rules() if rule.code in PACKAGE_CODES]


def fix(text: str, *codes: str, unsafe: bool = False, mounts: bool = False, context: Path | None = None) -> str:
    rules = Settings(select=codes or PACKAGE_CODES).rules_for(all_rules())
    options = {"cache-mounts": True} if mounts else {}
    path = str(context / "Dockerfile") if context else "Dockerfile"
    result = run(text, rules, unsafe_fixes=unsafe, options=options, context_dir=context, path=path)
    assert not result.rejected, [r.reason for r in result.rejected]
    return result.output


def findings(text: str, *codes: str, context: Path | None = None) -> list[tuple[int, str]]:
    rules = Settings(select=codes).rules_for(all_rules())
    result = run(text, rules, fix=False, context_dir=context)
    return [(f.line, f.code) for f in result.remaining]


# -- the edit lands on the right word ----------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("a && pip install x || true", "a && pip install --no-cache-dir x || true"),
        ("(cd /app && pip3 install -r r.txt)", "(cd /app && pip3 install --no-cache-dir -r r.txt)"),
        ("sudo -H python3 -m pip install x", "sudo -H python3 -m pip install --no-cache-dir x"),
        ("pip --disable-pip-version-check install x", "pip --disable-pip-version-check install --no-cache-dir x"),
        ("pip install --user -- x", "pip install --no-cache-dir --user -- x"),
        ("env PIP_INDEX_URL=http://i pip install x", "env PIP_INDEX_URL=http://i pip install --no-cache-dir x"),
        ("if true; then pip install x; fi", "if true; then pip install --no-cache-dir x; fi"),
        ("for p in a b; do pip install $p; done", "for p in a b; do pip install --no-cache-dir $p; done"),
    ],
)
def test_pip_option_lands_after_install(script: str, expected: str) -> None:
    assert fix(f"FROM python:3.11\nRUN {script}\n", "DO218") == f"FROM python:3.11\nRUN {expected}\n"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("apt-get -q install curl", "apt-get -q install -y curl"),
        (
            "apt-get -o Dpkg::Options::=--force-confnew install curl",
            "apt-get -o Dpkg::Options::=--force-confnew install -y curl",
        ),
        (
            "sudo DEBIAN_FRONTEND=noninteractive apt-get install curl",
            "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y curl",
        ),
        ("true || apt-get install x && echo", "true || apt-get install -y x && echo"),
        ("x=$(apt-get install -s curl)", "x=$(apt-get install -y -s curl)"),
    ],
)
def test_apt_yes_lands_after_install(script: str, expected: str) -> None:
    assert fix(f"FROM debian:12\nRUN {script}\n", "DO210") == f"FROM debian:12\nRUN {expected}\n"


def test_option_lands_on_the_line_of_its_word_across_continuations() -> None:
    text = "FROM debian:12\nRUN apt-get update && apt-get \\\n      install \\\n      curl\n"
    assert fix(text, "DO210") == "FROM debian:12\nRUN apt-get update && apt-get \\\n      install -y \\\n      curl\n"


def test_quotes_comments_and_data_heredocs_are_never_edited() -> None:
    text = (
        "FROM python:3.11\n"
        'RUN echo \'pip install x\' "apt-get install y" && bash -c "pip install z" # pip install c\n'
        "# pip install in a Dockerfile comment\n"
        "RUN cat > /setup.sh <<'EOF'\npip install x\napt-get install y\nEOF\n"
        "RUN python - <<EOF\nimport os\nos.system('pip install x')\nEOF\n"
    )
    assert fix(text) == text
    assert findings(text, *PACKAGE_CODES) == []


def test_heredoc_that_is_the_script_is_edited_inside_its_body() -> None:
    text = "FROM python:3.11\nRUN <<EOF\nset -e\npip install x\nEOF\n"
    assert fix(text, "DO218") == "FROM python:3.11\nRUN <<EOF\nset -e\npip install --no-cache-dir x\nEOF\n"


def test_heredoc_with_another_interpreter_is_not_shell() -> None:
    text = (
        "FROM python:3.11\nRUN <<EOF\n#!/usr/bin/env python3\nimport subprocess\nsubprocess.run('pip install x')\nEOF\n"
    )
    assert fix(text) == text


def test_exec_form_onbuild_and_other_shells_are_left_alone() -> None:
    text = (
        "FROM python:3.11\n"
        'RUN ["pip", "install", "x"]\n'
        "ONBUILD RUN pip install y\n"
        'SHELL ["pwsh", "-Command"]\n'
        "RUN pip install z\n"
    )
    assert fix(text) == text


def test_posix_shell_set_by_shell_instruction_is_read() -> None:
    text = 'FROM python:3.11\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN pip install z\n'
    assert "pip install --no-cache-dir z" in fix(text, "DO218")


def test_script_that_does_not_parse_is_not_touched() -> None:
    text = "FROM python:3.11\nRUN pip install x && (echo unclosed\n"
    assert fix(text) == text


# -- appending clean-up: styles, line endings, escape character ---------------------------------


def test_append_follows_leading_operator_style() -> None:
    text = "FROM debian:12\nRUN apt-get update \\\n    && apt-get install -y curl\n"
    expected = (
        "FROM debian:12\nRUN apt-get update \\\n    && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*\n"
    )
    assert fix(text, "DO212") == expected


def test_append_follows_trailing_operator_style_and_keeps_crlf() -> None:
    text = 'FROM debian:12\r\nRUN apt-get update && \\\r\n  apt-get install -y curl\r\nCMD ["curl"]\r\n'
    out = fix(text, "DO212")
    assert out == (
        "FROM debian:12\r\nRUN apt-get update && \\\r\n  apt-get install -y curl && \\\r\n"
        "  rm -rf /var/lib/apt/lists/*\r\n"
        'CMD ["curl"]\r\n'
    )


def test_append_uses_the_backtick_escape() -> None:
    text = "# escape=`\nFROM debian:12\nRUN apt-get update `\n    && apt-get install -y curl\n"
    assert fix(text, "DO212").endswith("apt-get install -y curl `\n    && rm -rf /var/lib/apt/lists/*\n")


def test_append_keeps_a_failing_script_failing() -> None:
    # `&&` after the whole script: a failed install still fails the RUN (a `;` would hide it).
    text = "FROM debian:12\nRUN apt-get update; apt-get install -y curl\n"
    assert (
        fix(text, "DO212")
        == "FROM debian:12\nRUN apt-get update; apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
    )


def test_append_refuses_a_trailing_comment_and_background_jobs() -> None:
    for script in ("apt-get update && apt-get install -y curl # done", "apt-get update && apt-get install -y x &"):
        text = f"FROM debian:12\nRUN {script}\n"
        assert fix(text, "DO212") == text
        assert findings(text, "DO212") == [(2, "DO212")]  # reported, but without a fix


def test_comment_line_inside_a_run_is_kept() -> None:
    text = "FROM alpine:3\nRUN apk update && \\\n# the index\n    apk add curl\n"
    out = fix(text, "DO216")
    assert "# the index" in out and "--no-cache" in out


# -- idempotence -----------------------------------------------------------------------------------

KITCHEN_SINK = """\
FROM debian:bookworm AS base
RUN apt update && apt install curl
RUN apt-get update \\
    && sudo apt-get -q install git \\
    && git --version

FROM base
RUN apk update && apk add bash && rm -rf /var/cache/apk/*
RUN pip install flask && uv pip install --system x && poetry install && pipenv install
RUN npm install -g nodemon && yarn install
RUN yum install httpd && dnf install gcc && microdnf install vim && zypper in wget
RUN gem install bundler && conda install -y numpy && go build ./...
RUN <<EOF
apt-get update
apt-get install curl
EOF
"""


@pytest.mark.parametrize("mounts", [False, True])
def test_fixing_twice_changes_nothing(mounts: bool) -> None:
    once = fix(KITCHEN_SINK, unsafe=True, mounts=mounts)
    assert once != KITCHEN_SINK
    assert fix(once, unsafe=True, mounts=mounts) == once
    parse(once)  # still a Dockerfile


def test_every_rewritten_script_still_parses() -> None:
    out = parse(fix(KITCHEN_SINK, unsafe=True))
    for ins in out.instructions:
        script = run_script(out, ins)
        assert script is None or not script.shell.has_errors, ins.line


# -- cache mounts ---------------------------------------------------------------------------------


def test_cache_mounts_replace_the_deletion() -> None:
    text = "FROM python:3.11\nRUN pip install -r requirements.txt\n"
    assert fix(text, "DO218", mounts=True) == (
        "FROM python:3.11\nRUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
    )


def test_apt_cache_mounts_handle_docker_clean_once_per_stage() -> None:
    text = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl\nRUN apt-get update && apt-get install -y git\n"
    )
    out = fix(text, "DO212", mounts=True)
    assert out.count("--mount=type=cache,target=/var/cache/apt,sharing=locked") == 2
    assert out.count("--mount=type=cache,target=/var/lib/apt/lists,sharing=locked") == 2
    assert out.count("rm -f /etc/apt/apt.conf.d/docker-clean") == 1
    assert "target=/var/lib/apt," not in out  # /var/lib/apt/extended_states stays in the image


def test_no_mount_over_the_working_directory_or_a_path_used_later() -> None:
    inside = "FROM node:18\nWORKDIR /root/.npm/app\nRUN npm ci\n"
    assert fix(inside, "DO224", mounts=True).endswith("RUN npm ci && npm cache clean --force\n")
    copied = "FROM node:18 AS build\nRUN npm ci\nFROM node:18\nCOPY --from=build /root/.npm /cache\nRUN npm ci\n"
    out = fix(copied, "DO224", mounts=True)
    assert out.count("--mount") == 1  # only the final stage's RUN; the build stage's cache is copied later


def test_no_apt_mount_when_a_later_run_needs_the_lists() -> None:
    text = "FROM debian:12\nRUN apt-get update && apt-get install -y curl\nRUN apt-get install -y git\n"
    assert fix(text, "DO212", mounts=True) == text
    assert findings(text, "DO212") == [(2, "DO212")]


def test_poetry_mounts_never_cover_its_virtualenvs() -> None:
    out = fix("FROM python:3.11\nRUN poetry install\n", "DO221", mounts=True)
    assert "target=/root/.cache/pypoetry/artifacts" in out and "target=/root/.cache/pypoetry/cache" in out
    assert "target=/root/.cache/pypoetry " not in out and "target=/root/.cache/pypoetry\n" not in out


def test_mount_needs_root_or_a_known_cache_folder() -> None:
    text = "FROM python:3.11\nUSER app\nRUN pip install x\n"
    assert fix(text, "DO218", mounts=True) == "FROM python:3.11\nUSER app\nRUN pip install --no-cache-dir x\n"


# -- stages ---------------------------------------------------------------------------------------


def test_caches_in_stages_the_image_does_not_contain_are_not_reported() -> None:
    text = "FROM python:3.11 AS build\nRUN pip install x\nFROM python:3.11-slim\nCOPY --from=build /x /x\n"
    assert findings(text, "DO218") == []
    assert findings(text.replace("FROM python:3.11-slim", "FROM build"), "DO218") == [(2, "DO218")]


# -- build context ----------------------------------------------------------------------------------


def _context(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _ctx(text: str, context: Path) -> tuple[Context, object]:
    ctx = Context(parse(text), str(context / "Dockerfile"), context, {})
    return ctx, ctx.document.instructions[-1]


def test_copied_from_context_follows_globs_folders_and_workdir(tmp_path: Path) -> None:
    context = _context(tmp_path, {"app/package-lock.json": "{}", "package-lock.json": "{}"})
    ctx, ins = _ctx("FROM node:18\nWORKDIR /srv\nCOPY app/ ./\nRUN true\n", context)
    assert copied_from_context(ctx, ins, "/srv/package-lock.json") == context / "app/package-lock.json"
    ctx, ins = _ctx("FROM node:18\nCOPY package*.json /srv/\nRUN true\n", context)
    assert copied_from_context(ctx, ins, "/srv/package-lock.json") == context / "package-lock.json"
    ctx, ins = _ctx("FROM node:18\nCOPY package-lock.json /srv/lock.json\nRUN true\n", context)
    assert copied_from_context(ctx, ins, "/srv/lock.json") == context / "package-lock.json"
    assert copied_from_context(ctx, ins, "/srv/package-lock.json") is None
    ctx, ins = _ctx("FROM node:18\nCOPY --from=deps /app/package-lock.json /srv/\nRUN true\n", context)
    assert copied_from_context(ctx, ins, "/srv/package-lock.json") is None


def test_dockerignore_exclusions_and_exceptions(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        {
            "a/package-lock.json": "{}",
            "b/package-lock.json": "{}",
            ".dockerignore": "**/package-lock.json\n!b/*.json\n",
        },
    )
    ctx = Context(parse("FROM x\n"), str(context / "Dockerfile"), context, {})
    assert context_file(ctx, "a/package-lock.json") is None
    assert context_file(ctx, "b/package-lock.json") == context / "b/package-lock.json"


def test_lockfile_agreement() -> None:
    package = {"dependencies": {"express": "^4.19.2"}, "devDependencies": {"jest": "29"}}
    lock = {
        "lockfileVersion": 3,
        "packages": {"": {"dependencies": {"express": "^4.19.2"}, "devDependencies": {"jest": "29"}}},
    }
    assert lock_agreement(package, lock) is True
    assert lock_agreement({"dependencies": {"express": "^5"}}, lock) is False
    assert lock_agreement(package, {"lockfileVersion": 1, "dependencies": {}}) is None


def test_npm_ci_needs_the_lockfile_in_the_build_context(tmp_path: Path) -> None:
    package = {"name": "x", "version": "1.0.0", "dependencies": {"express": "4.19.2"}}
    lock = {"name": "x", "lockfileVersion": 3, "packages": {"": {"name": "x", "dependencies": {"express": "4.19.2"}}}}
    text = "FROM node:18\nWORKDIR /app\nCOPY package*.json ./\nRUN npm install\n"
    assert findings(text, "DO223", context=tmp_path) == []  # no context files: nothing proves a lockfile
    context = _context(tmp_path, {"package.json": json.dumps(package), "package-lock.json": json.dumps(lock)})
    assert fix(text, "DO223", context=context).endswith("RUN npm ci\n")


# -- the rule set ------------------------------------------------------------------------------------


def test_every_package_rule_documents_itself_and_its_hadolint_alias() -> None:
    assert len(RULES) >= 28
    for rule in RULES:
        doc = rule.documentation()
        assert isinstance(rule, PackageRule), rule.code
        if rule.hadolint:
            assert f"Same as hadolint's {rule.hadolint}." in doc, rule.code
            assert matches(rule, [rule.hadolint])
        if rule.fix_safety is not None:
            assert "## Fix safety" in doc, rule.code
        if not rule.default_enabled:
            assert "off by default" in doc and rule.fix_safety is None, rule.code


def test_pinning_rules_are_opt_in() -> None:
    default = {rule.code for rule in Settings().rules_for(all_rules())}
    assert {"DO215", "DO217", "DO219", "DO226", "DO235"}.isdisjoint(default)
    assert {"DO210", "DO212", "DO216", "DO218", "DO224"} <= default
    chosen = {rule.code for rule in Settings(extend_select=("DL3008",)).rules_for(all_rules())}
    assert "DO215" in chosen


def test_unsafe_fixes_wait_for_unsafe_mode() -> None:
    text = "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
    assert fix(text, "DO211") == text
    assert "--no-install-recommends" in fix(text, "DO211", unsafe=True)
    unsafe = {rule.code for rule in RULES if rule.fix_safety is FixSafety.UNSAFE}
    assert unsafe == {"DO211", "DO225"}
