"""The bot end to end: real git with a bare repository as the remote, a local GitHub/GitLab API."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from dopt.bot import forge as forge_module
from dopt.bot.git import BOT_EMAIL

from .conftest import PROJECT, TOKEN, Remote, git, make_remote
from .forge_server import ForgeServer, encoded, serve

BRANCH = "dopt/fixes"


def _squash(text: str) -> str:
    return " ".join(text.split())


def _do100_why() -> str:
    from dopt.transforms import all_rules

    doc = next(r for r in all_rules() if r.code == "DO100").documentation()
    return _squash(doc.split("## Why", 1)[1].strip().split("\n\n", 1)[0])


# -- GitHub -----------------------------------------------------------------------------------


def test_first_run_pushes_fixed_files_and_opens_a_pull_request(bot, remote: Remote, forge: ForgeServer) -> None:
    main_before = remote.sha("main")
    result = bot()
    assert result.code == 0, result.err
    assert result.err == ""

    # The branch holds the fixed files, one bot commit on top of main; main itself is untouched.
    assert remote.sha("main") == main_before
    assert remote.parent(BRANCH) == main_before
    assert remote.show(BRANCH, "Dockerfile").startswith("FROM debian:12\nRUN echo hi\n")
    assert "RUN echo api" in remote.show(BRANCH, "services/api/Dockerfile")
    assert remote.show(BRANCH, "README.md") == "# app\n"
    message = remote.message(BRANCH)
    summary, blank, *rest = message.splitlines()
    assert summary.startswith("dopt: apply ") and blank == ""
    assert "- Dockerfile:1: DO100 keyword-case: write FROM in upper case (safe)" in rest
    assert "- services/api/Dockerfile:2: DO100 keyword-case: write RUN in upper case (safe)" in rest
    assert "Dopt-Bot: " in message
    assert git("log", "-1", "--format=%ae %ce", BRANCH, cwd=remote.path).split() == [BOT_EMAIL, BOT_EMAIL]

    # One pull request from the branch into main, explaining each change.
    [pr] = forge.open_pulls(PROJECT)
    assert (pr["head"]["ref"], pr["base"]["ref"]) == (BRANCH, "main")
    body = pr["body"]
    assert "### `Dockerfile`" in body and "### `services/api/Dockerfile`" in body
    assert "| 1 | `DO100` keyword-case | write FROM in upper case | safe |" in body
    assert "| 2 | `DO100` keyword-case | write RUN in upper case | safe |" in body
    assert _do100_why() in _squash(body)
    assert "All fixes are **safe**" in body
    assert f"Opened pull request #{pr['number']}: {pr['html_url']}" in result.out
    [post] = forge.requests("github", "POST")
    assert post.path == "/api/v3/repos/acme/app/pulls"
    assert post.body["head"] == BRANCH and post.body["base"] == "main"


def test_second_run_without_new_changes_pushes_and_updates_nothing(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    refs = remote.refs()
    writes = len(forge.writes())
    result = bot()
    assert result.code == 0, result.err
    assert remote.refs() == refs
    assert len(forge.writes()) == writes
    assert len(forge.open_pulls(PROJECT)) == 1
    assert "Already up to date" in result.out


def test_unrelated_upstream_change_does_not_touch_the_pull_request(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    branch = remote.sha(BRANCH)
    remote.commit({"README.md": "# app\n\nMore words.\n"}, "Docs")
    result = bot()
    assert result.code == 0, result.err
    assert remote.sha(BRANCH) == branch
    assert [r.method for r in forge.writes()] == ["POST"]


def test_upstream_dockerfile_change_updates_the_same_pull_request(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    [pr] = forge.open_pulls(PROJECT)
    pr["title"] = "Dockerfile clean-up (renamed by a reviewer)"
    first = remote.sha(BRANCH)
    new_main = remote.commit({"services/api/Dockerfile": "FROM debian:12\nrun echo api\nrun echo more\n"}, "More api")

    result = bot()
    assert result.code == 0, result.err
    assert remote.sha(BRANCH) != first
    assert remote.parent(BRANCH) == new_main  # rebuilt on the new main, still one bot commit
    fixed = remote.show(BRANCH, "services/api/Dockerfile")
    assert "echo more" in fixed and not re.search(r"^run ", fixed, flags=re.M)
    assert forge.open_pulls(PROJECT) == [pr]
    [patch] = forge.requests("github", "PATCH")
    assert patch.path == f"/api/v3/repos/acme/app/pulls/{pr['number']}"
    assert set(patch.body) == {"body"}  # the description is the bot's; the title may be someone's
    assert pr["title"] == "Dockerfile clean-up (renamed by a reviewer)"
    assert "write RUN in upper case" in pr["body"] and "services/api/Dockerfile" in pr["body"]
    assert f"Updated pull request #{pr['number']}" in result.out


def test_branch_someone_pushed_to_is_left_alone(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    theirs = remote.commit({"notes.txt": "work in progress\n"}, "My own tweak", branch=BRANCH)
    remote.commit({"services/api/Dockerfile": "FROM debian:12\nrun echo changed\n"}, "Upstream change")
    writes = len(forge.writes())

    result = bot()
    assert result.code == 1
    assert "commits the bot did not make" in result.err
    assert theirs[:12] in result.err and "My own tweak" in result.err and "Jane Doe" in result.err
    assert remote.sha(BRANCH) == theirs
    assert len(forge.writes()) == writes


def test_amended_bot_commit_counts_as_someone_elses(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    amended = remote.commit({"Dockerfile": "FROM debian:12\nRUN echo mine\n"}, "dopt: mine now", branch=BRANCH,
                            amend=True)  # fmt: skip
    result = bot()
    assert result.code == 1 and "did not make" in result.err
    assert remote.sha(BRANCH) == amended


def test_bad_token_is_a_clear_error_and_nothing_is_pushed(bot, remote: Remote, forge: ForgeServer) -> None:
    refs = remote.refs()
    result = bot(token="wrong-token")
    assert result.code == 2
    assert "GitHub rejected the token (401: Bad credentials)" in result.err
    assert "GITHUB_TOKEN" in result.err
    assert "wrong-token" not in result.err + result.out
    assert remote.refs() == refs
    assert forge.writes() == []


def test_token_from_the_environment(bot, remote: Remote, forge: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    result = bot(token=None)
    assert result.code == 0, result.err
    assert len(forge.open_pulls(PROJECT)) == 1


def test_missing_token_stops_before_cloning(bot, remote: Remote, forge: ForgeServer) -> None:
    result = bot(token=None)
    assert result.code == 2
    assert "no token: set GITHUB_TOKEN or pass --token" in result.err
    assert forge.state.log == []


def test_unknown_repository_is_a_clear_error(bot, remote: Remote, forge: ForgeServer) -> None:
    refs = remote.refs()
    result = bot(project="acme/nope")
    assert result.code == 2
    assert "GitHub repository acme/nope not found" in result.err
    assert remote.refs() == refs


def test_server_down_is_a_clear_error(bot, remote: Remote) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refs = remote.refs()
    result = bot(base_url=f"http://127.0.0.1:{port}/api/v3")
    assert result.code == 2
    assert f"cannot reach the GitHub API at http://127.0.0.1:{port}/api/v3" in result.err
    assert "Connection refused" in result.err
    assert remote.refs() == refs


def test_dry_run_prints_the_plan_only(bot, remote: Remote, forge: ForgeServer) -> None:
    refs = remote.refs()
    result = bot(dry_run=True, token=None)
    assert result.code == 0, result.err
    assert "Dry run: would push dopt/fixes and open a pull request into main" in result.out
    assert "--- commit message ---" in result.out and "dopt: apply " in result.out
    assert "| 1 | `DO100` keyword-case | write FROM in upper case | safe |" in result.out
    assert remote.refs() == refs
    assert forge.state.log == []


def test_dry_run_after_a_run_says_it_would_update(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    remote.commit({"Dockerfile": "from debian:12\nrun echo changed\n"}, "Change")
    refs = remote.refs()
    result = bot(dry_run=True)
    assert result.code == 0
    assert "would update dopt/fixes" in result.out
    assert remote.refs() == refs


def test_pagination_finds_the_pull_request_on_a_later_page(
    bot, remote: Remote, forge: ForgeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bot().code == 0
    [ours] = forge.open_pulls(PROJECT)
    # The same head may have open pull requests into other bases: newer ones come first.
    for n in range(5):
        forge.new_pull(PROJECT, BRANCH, f"release-{n}", f"backport {n}", "")
    monkeypatch.setattr(forge_module, "PAGE_SIZE", 2)
    remote.commit({"Dockerfile": "from debian:12\nrun echo changed\n"}, "Change")

    result = bot()
    assert result.code == 0, result.err
    pages = [r.query.get("page", "1") for r in forge.requests("github", "GET")[-3:]]
    assert pages == ["1", "2", "3"]
    assert [r.method for r in forge.writes()] == ["POST", "PATCH"]
    assert forge.writes()[-1].path.endswith(f"/pulls/{ours['number']}")
    assert len([p for p in forge.open_pulls(PROJECT) if p["base"]["ref"] == "main"]) == 1


def test_pull_request_opened_meanwhile_is_updated_not_duplicated(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot().code == 0
    remote.commit({"Dockerfile": "from debian:12\nrun echo changed\n"}, "Change")
    forge.state.hide_from_next_list = 1  # the look-up misses it, as if another run had just opened it
    result = bot()
    assert result.code == 0, result.err
    assert [r.method for r in forge.writes()] == ["POST", "POST", "PATCH"]
    assert len(forge.open_pulls(PROJECT)) == 1
    assert "Updated pull request #1" in result.out


def test_push_rejected_by_the_remote_opens_nothing(bot, remote: Remote, forge: ForgeServer) -> None:
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch protection: pushes are disabled' >&2\nexit 1\n")
    hook.chmod(0o755)
    refs = remote.refs()
    result = bot()
    assert result.code == 2
    assert "cannot push dopt/fixes" in result.err and "pushes are disabled" in result.err
    assert remote.refs() == refs
    assert forge.writes() == []


def test_nothing_to_fix_pushes_and_opens_nothing(tmp_path: Path) -> None:
    from dopt.bot import run_bot

    clean = make_remote(tmp_path, {"Dockerfile": "FROM debian:12\nRUN echo hi\n"}, name="clean")
    with serve(TOKEN, {"acme/clean": clean.path}) as server:
        import io

        out, err = io.StringIO(), io.StringIO()
        code = run_bot(str(clean.path), provider="github", base_url=server.github_url, token=TOKEN,
                       project="acme/clean", out=out, err=err)  # fmt: skip
        assert code == 0, err.getvalue()
        assert "Nothing to fix in 1 Dockerfile on main" in out.getvalue()
        assert server.state.log == []
    assert clean.sha(BRANCH) is None


def test_repository_configuration_decides_the_rules(bot, remote: Remote, forge: ForgeServer) -> None:
    remote.commit({"dopt.toml": 'ignore = ["DO100"]\n'}, "Configure dopt")
    result = bot()
    assert result.code == 0, result.err
    assert "Nothing to fix" in result.out
    assert remote.sha(BRANCH) is None and forge.writes() == []


def test_configuration_outside_the_repository_is_ignored(
    bot, remote: Remote, forge: ForgeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (scratch / "dopt.toml").write_text('ignore = ["DO100"]\n')  # above the bot's temporary clone
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = bot()
    assert result.code == 0, result.err
    assert remote.sha(BRANCH) is not None
    assert not list(scratch.glob("dopt-bot-*"))  # the temporary clone is gone


def test_invalid_configuration_is_an_error(bot, remote: Remote, forge: ForgeServer) -> None:
    remote.commit({"dopt.toml": "unsafe-fixes = 3\n"}, "Broken config")
    result = bot()
    assert result.code == 2
    assert "configuration is invalid" in result.err and "unsafe-fixes" in result.err
    assert remote.sha(BRANCH) is None


def _unsafe_rule() -> str | None:
    from dopt.transforms import all_rules

    rule = next((r for r in all_rules() if r.code == "DO101"), None)
    return rule.code if rule is not None and rule.fix_safety == "unsafe" else None


def test_unsafe_fixes_only_when_asked(bot, remote: Remote, forge: ForgeServer) -> None:
    if _unsafe_rule() is None:
        pytest.skip("DO101 (MAINTAINER) is no longer an unsafe fix")
    remote.commit({"Dockerfile": "FROM debian:12\nMAINTAINER Jane <jane@example.com>\n",
                   "services/api/Dockerfile": "FROM debian:12\n"}, "Only an unsafe problem")  # fmt: skip
    assert bot().code == 0
    if remote.sha(BRANCH):  # another safe rule may have fixed something; the MAINTAINER must remain
        assert "MAINTAINER" in remote.show(BRANCH, "Dockerfile")
    result = bot(unsafe_fixes=True)
    assert result.code == 0, result.err
    assert "LABEL maintainer=" in remote.show(BRANCH, "Dockerfile")
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert "| unsafe |" in body and "**1 unsafe fix**" in body


def test_unparsable_dockerfile_is_skipped_and_reported(bot, remote: Remote, forge: ForgeServer) -> None:
    remote.commit({"broken/Dockerfile": "# to do\n"}, "Broken")
    result = bot()
    assert result.code == 0, result.err
    assert "skipped broken/Dockerfile" in result.out
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert "## Left alone" in body and "broken/Dockerfile" in body


def test_working_copy_pushes_to_its_origin_and_stays_as_it_was(bot, remote: Remote, forge: ForgeServer,
                                                               tmp_path: Path) -> None:  # fmt: skip
    work = tmp_path / "my-checkout"
    git("clone", "--quiet", str(remote.path), str(work), cwd=tmp_path)
    (work / "Dockerfile").write_text("from debian:12\nrun echo local edit\n")  # uncommitted work
    status = git("status", "--porcelain", cwd=work)
    branches = git("branch", "--all", cwd=work)
    result = bot(repo=str(work))
    assert result.code == 0, result.err
    assert "origin" in result.out
    assert remote.sha(BRANCH) is not None
    assert remote.show(BRANCH, "Dockerfile").startswith("FROM debian:12\nRUN echo hi\n")  # committed state only
    assert git("status", "--porcelain", cwd=work) == status
    assert git("branch", "--all", cwd=work) == branches
    assert (work / "Dockerfile").read_text() == "from debian:12\nrun echo local edit\n"


def test_verify_without_the_verify_module_leaves_a_note(bot, remote: Remote, forge: ForgeServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from dopt.bot import savings

    def missing():  # type: ignore[no-untyped-def]
        raise ImportError("No module named 'dopt.verify.command'")

    monkeypatch.setattr(savings, "_verify_api", missing)
    result = bot(verify=True)
    assert result.code == 0, result.err
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert "## Measured savings" in body
    assert "not measured: dopt's verify module is not available here" in body


def test_verify_results_go_into_the_description(bot, remote: Remote, forge: ForgeServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from dopt.bot import savings

    seen: list[tuple[str, str, str, str]] = []

    class Engine:
        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def info(self) -> None:
            return None

    class Options:
        def __init__(self, unsafe: bool) -> None:
            self.unsafe = unsafe

    class Result:
        status = "ok"

    def verify_texts(original, fixed, context, options, engine):  # type: ignore[no-untyped-def]
        seen.append((original, fixed, context.name, (context / "Dockerfile").read_text()))
        return Result()

    def to_markdown(result) -> str:  # type: ignore[no-untyped-def]
        return "### dopt verify (safe fixes)\n\n| | original | fixed | change |\n|---|---:|---:|---:|\n| image size | 120.0 MB | 80.0 MB | -33% |\n"  # noqa: E501

    monkeypatch.setattr(savings, "_verify_api", lambda: (Engine, Options, to_markdown, verify_texts, OSError))
    result = bot(verify=True)
    assert result.code == 0, result.err
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert "| image size | 120.0 MB | 80.0 MB | -33% |" in body
    assert "#### `services/api/Dockerfile`" in body
    # Built from the original text in a pristine checkout of main, against the bot's own fixed text.
    original, fixed, _, on_disk = next(s for s in seen if s[2] == "api")
    assert original == "FROM debian:12\nrun echo api\n" and "RUN echo api" in fixed
    assert on_disk == original


def test_invalid_branch_name_and_provider(bot) -> None:
    assert "not a valid branch name" in bot(branch="bad..name").err
    assert "unknown provider 'bitbucket'" in bot(provider="bitbucket").err


# -- GitLab -----------------------------------------------------------------------------------


def test_gitlab_merge_request_flow(bot, remote: Remote, forge: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bot(provider="gitlab")
    assert result.code == 0, result.err
    [mr] = forge.open_mrs(PROJECT)
    assert (mr["source_branch"], mr["target_branch"]) == (BRANCH, "main")
    assert "| 1 | `DO100` keyword-case | write FROM in upper case | safe |" in mr["description"]
    assert "merge request" in mr["description"]
    assert f"Opened merge request !{mr['iid']}: {mr['web_url']}" in result.out
    [post] = forge.requests("gitlab", "POST")
    assert post.path == f"/api/v4/projects/{encoded(PROJECT)}/merge_requests"
    assert remote.show(BRANCH, "Dockerfile").startswith("FROM debian:12\nRUN echo hi\n")

    # Again with nothing new: nothing written.
    assert bot(provider="gitlab").code == 0
    assert [r.method for r in forge.writes()] == ["POST"]

    # Other merge requests from the same branch into other targets push ours to page 3.
    for n in range(5):
        forge.new_mr(PROJECT, BRANCH, f"release-{n}", f"backport {n}", "")
    monkeypatch.setattr(forge_module, "PAGE_SIZE", 2)
    remote.commit({"Dockerfile": "from debian:12\nrun echo changed\n"}, "Change")
    result = bot(provider="gitlab")
    assert result.code == 0, result.err
    pages = [r.query.get("page", "1") for r in forge.requests("gitlab", "GET")[-3:]]
    assert pages == ["1", "2", "3"]
    [put] = forge.requests("gitlab", "PUT")
    assert put.path == f"/api/v4/projects/{encoded(PROJECT)}/merge_requests/{mr['iid']}"
    assert "write RUN in upper case" in mr["description"] and "RUN echo changed" in remote.show(BRANCH, "Dockerfile")
    assert len([m for m in forge.open_mrs(PROJECT) if m["target_branch"] == "main"]) == 1


def test_gitlab_merge_request_opened_meanwhile_409(bot, remote: Remote, forge: ForgeServer) -> None:
    assert bot(provider="gitlab").code == 0
    remote.commit({"Dockerfile": "from debian:12\nrun echo changed\n"}, "Change")
    forge.state.hide_from_next_list = 1
    result = bot(provider="gitlab")
    assert result.code == 0, result.err
    assert [r.method for r in forge.writes()] == ["POST", "POST", "PUT"]
    assert len(forge.open_mrs(PROJECT)) == 1


def test_gitlab_errors(bot, remote: Remote, forge: ForgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = remote.refs()
    bad = bot(provider="gitlab", token="nope")
    assert bad.code == 2 and "GitLab rejected the token (401 Unauthorized)" in bad.err and "GITLAB_TOKEN" in bad.err
    missing = bot(provider="gitlab", project="acme/missing")
    assert missing.code == 2 and "GitLab project acme/missing not found" in missing.err
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    assert bot(provider="gitlab", token=None).code == 0
    assert remote.refs() != refs  # the last run did push
    assert [r.method for r in forge.writes()] == ["POST"]


def test_gitlab_nested_group_project_is_url_encoded(tmp_path: Path) -> None:
    import io

    from dopt.bot import run_bot

    nested = make_remote(tmp_path, {"Dockerfile": "from debian:12\n"}, name="nested")
    with serve(TOKEN, {"acme/platform/nested": nested.path}) as server:
        out, err = io.StringIO(), io.StringIO()
        code = run_bot(str(nested.path), provider="gitlab", base_url=server.gitlab_url, token=TOKEN,
                       project="acme/platform/nested", out=out, err=err)  # fmt: skip
        assert code == 0, err.getvalue()
        assert server.requests("gitlab", "POST")[0].path == "/api/v4/projects/acme%2Fplatform%2Fnested/merge_requests"
        assert len(server.open_mrs("acme/platform/nested")) == 1
