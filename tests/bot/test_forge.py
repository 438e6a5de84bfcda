"""The provider clients against the local API server, and the helpers that read URLs and headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dopt.bot.forge import (
    AlreadyExists,
    ForgeError,
    GitHub,
    GitLab,
    _link_next,
    default_base_url,
    make_forge,
    parse_remote,
    redact,
)
from dopt.bot.runner import Source, _Run

from .conftest import PROJECT, TOKEN, Remote
from .forge_server import ForgeServer


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://github.com/acme/app.git", "github.com", "acme/app"),
        ("https://github.com/acme/app", "github.com", "acme/app"),
        ("git@github.com:acme/app.git", "github.com", "acme/app"),
        ("ssh://git@gitlab.example.com:2222/group/sub/app.git", "gitlab.example.com:2222", "group/sub/app"),
        ("https://user:secret@ghe.corp:8443/acme/app.git", "ghe.corp:8443", "acme/app"),
    ],
)
def test_parse_remote(url: str, host: str, path: str) -> None:
    remote = parse_remote(url)
    assert remote is not None and (remote.host, remote.path) == (host, path)


@pytest.mark.parametrize("url", ["/srv/git/app.git", "file:///srv/git/app.git", "relative/path", "https://host/"])
def test_parse_remote_local_or_empty(url: str) -> None:
    assert parse_remote(url) is None


def test_default_base_url_follows_the_clone_url() -> None:
    assert default_base_url("github", None) == "https://api.github.com"
    assert default_base_url("github", parse_remote("git@github.com:a/b.git")) == "https://api.github.com"
    assert default_base_url("github", parse_remote("https://ghe.corp/a/b.git")) == "https://ghe.corp/api/v3"
    assert default_base_url("github", parse_remote("git@ghe.corp:a/b.git")) == "https://ghe.corp/api/v3"
    assert default_base_url("gitlab", None) == "https://gitlab.com/api/v4"
    assert default_base_url("gitlab", parse_remote("https://gitlab.com/g/p.git")) == "https://gitlab.com/api/v4"
    assert default_base_url("gitlab", parse_remote("ssh://git@git.corp:2222/g/p")) == "https://git.corp/api/v4"


def test_link_header_next() -> None:
    header = (
        '<https://api.github.com/repositories/1/pulls?page=1>; rel="prev", '
        '<https://api.github.com/repositories/1/pulls?page=3>; rel="next", '
        '<https://api.github.com/repositories/1/pulls?page=5>; rel="last"'
    )
    assert _link_next(header) == "https://api.github.com/repositories/1/pulls?page=3"
    assert _link_next('<https://x/y?page=2>; rel="last"') is None
    assert _link_next(None) is None


def test_redact_hides_credentials_in_urls() -> None:
    assert redact("fatal: https://user:tok@github.com/a/b.git denied") == "fatal: https://***@github.com/a/b.git denied"


def test_project_names_are_checked() -> None:
    with pytest.raises(ForgeError, match="owner/name"):
        make_forge("github", base_url="https://api.github.com", token="t", project="acme")
    with pytest.raises(ForgeError, match="group/name"):
        make_forge("gitlab", base_url="https://gitlab.com/api/v4", token="t", project="acme")
    with pytest.raises(ForgeError, match="unknown provider"):
        make_forge("gitea", base_url="https://x", token="t", project="a/b")


def test_push_credentials_only_for_the_providers_own_host() -> None:
    github = GitHub("https://api.github.com", "tok", "acme/app")
    run = _Run("x", provider="github", base_url=None, token="tok", branch="b", unsafe_fixes=False, verify=False,
               dry_run=False, project=None, out=None)  # type: ignore[arg-type]  # fmt: skip
    config = run.git_config(Source("https://github.com/acme/app.git", local=False), github)
    assert list(config) == ["http.https://github.com/.extraHeader"]
    assert config["http.https://github.com/.extraHeader"].startswith("Authorization: Basic ")
    assert run.git_config(Source("https://evil.example/acme/app.git", local=False), github) == {}
    assert run.git_config(Source("git@github.com:acme/app.git", local=False), github) == {}
    ghe = GitHub("https://ghe.corp/api/v3", "tok", "acme/app")
    assert list(run.git_config(Source("https://ghe.corp/acme/app.git", local=False), ghe)) == [
        "http.https://ghe.corp/.extraHeader"
    ]


def test_github_422_validation_and_duplicate(remote: Remote, forge: ForgeServer) -> None:
    client = GitHub(forge.github_url, TOKEN, PROJECT)
    with pytest.raises(ForgeError, match=r"422 Validation Failed.*head invalid") as info:
        client.create("no-such-branch", "main", "t", "b")
    assert not isinstance(info.value, AlreadyExists)
    forge.new_pull(PROJECT, "feature", "main", "existing", "")
    forge.state.forced.append(
        (
            422,
            {
                "message": "Validation Failed",
                "errors": [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": "A pull request already exists for acme:feature.",
                    }
                ],
            },
            {},
        )
    )
    with pytest.raises(AlreadyExists, match="already exists"):
        client.create("feature", "main", "t", "b")


def test_github_403_permissions_and_rate_limit(forge: ForgeServer) -> None:
    client = GitHub(forge.github_url, TOKEN, PROJECT)
    forge.state.forced.append((403, {"message": "Resource not accessible by integration"}, {}))
    with pytest.raises(ForgeError, match=r"403.*Resource not accessible.*pull-requests: write"):
        client.find_open("dopt/fixes", "main")
    forge.state.forced.append(
        (
            403,
            {"message": "API rate limit exceeded for installation"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"},
        )
    )
    with pytest.raises(ForgeError, match=r"rate limit exceeded \(resets at Unix time 1700000000\)"):
        client.find_open("dopt/fixes", "main")


def test_github_requires_authentication(forge: ForgeServer) -> None:
    client = GitHub(forge.github_url, "", PROJECT)
    with pytest.raises(ForgeError, match=r"rejected the token \(401: Requires authentication\)"):
        client.find_open("dopt/fixes", "main")


def test_github_pagination_does_not_follow_links_to_other_servers(forge: ForgeServer) -> None:
    client = GitHub(forge.github_url, TOKEN, PROJECT)
    forge.state.forced.append((200, [], {"Link": '<https://evil.example/steal?page=2>; rel="next"'}))
    with pytest.raises(ForgeError, match="linked to another server"):
        client.find_open("dopt/fixes", "main")
    assert len(forge.state.log) == 1


def test_gitlab_403_and_unexpected_answers(forge: ForgeServer) -> None:
    client = GitLab(forge.gitlab_url, TOKEN, PROJECT)
    forge.state.forced.append((403, {"message": "403 Forbidden"}, {}))
    with pytest.raises(ForgeError, match=r"403 Forbidden.*'api' scope"):
        client.find_open("dopt/fixes", "main")
    forge.state.forced.append((500, {"message": "500 Internal Server Error"}, {}))
    with pytest.raises(ForgeError, match=r"GitLab answered 500 to GET .*merge_requests"):
        client.find_open("dopt/fixes", "main")
    forge.state.forced.append((200, {"not": "a list"}, {}))
    with pytest.raises(ForgeError, match="expected a list"):
        client.find_open("dopt/fixes", "main")


def test_gitlab_422_missing_branch(remote: Remote, forge: ForgeServer) -> None:
    client = GitLab(forge.gitlab_url, TOKEN, PROJECT)
    with pytest.raises(ForgeError, match=r'GitLab answered 422 .*Source branch "nope" does not exist'):
        client.create("nope", "main", "t", "b")


def test_token_never_in_messages(tmp_path: Path, forge: ForgeServer) -> None:
    client = GitHub(forge.github_url, "ghp_secretvalue", PROJECT)
    with pytest.raises(ForgeError) as info:
        client.find_open("dopt/fixes", "main")
    assert "ghp_secretvalue" not in str(info.value)
