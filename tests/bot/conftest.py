"""Fixtures for the bot tests: an isolated git, a seeded bare "remote" and the local forge server."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .forge_server import ForgeServer, serve

TOKEN = "t0ken-for-tests"
PROJECT = "acme/app"

# Lower-case keywords: DO100 (keyword-case) fixes them safely whatever other rules exist.
SEED = {
    "Dockerfile": 'from debian:12\nrun echo hi\nCMD ["sh"]\n',
    "services/api/Dockerfile": "FROM debian:12\nrun echo api\n",
    "README.md": "# app\n",
}


def git(*args: str, cwd: Path, stdin: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class Remote:
    """A bare repository standing in for the hosted one, plus helpers to inspect and change it."""

    path: Path
    scratch: Path
    _clones: int = field(default=0)

    def sha(self, branch: str) -> str | None:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=self.path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout.strip() or None

    def refs(self) -> dict[str, str]:
        out = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.path)
        return dict(line.split(" ", 1) for line in out.splitlines())

    def show(self, ref: str, path: str) -> str:
        return git("show", f"{ref}:{path}", cwd=self.path)

    def message(self, ref: str) -> str:
        return git("log", "-1", "--format=%B", ref, cwd=self.path)

    def parent(self, ref: str) -> str:
        return git("rev-parse", f"{ref}^", cwd=self.path).strip()

    def count(self, revision_range: str) -> int:
        return int(git("rev-list", "--count", revision_range, cwd=self.path).strip())

    def commit(
        self,
        files: dict[str, str],
        message: str,
        *,
        branch: str = "main",
        author: tuple[str, str] = ("Jane Doe", "jane@example.com"),
        amend: bool = False,
    ) -> str:
        """Commit ``files`` on ``branch`` from a fresh clone and push it, as a person would."""
        self._clones += 1
        work = self.scratch / f"person-{self._clones}"
        git("clone", "--quiet", str(self.path), str(work), cwd=self.scratch)
        git("checkout", "--quiet", branch, cwd=work)
        for name, text in files.items():
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "--all", cwd=work)
        name, email = author
        ident = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        subprocess.run(
            ["git", *ident, "commit", "--quiet", *(["--amend"] if amend else []), "-m", message],
            cwd=work, check=True, capture_output=True,
            env={**_env_now(), "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                 "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email},
        )  # fmt: skip
        git("push", "--quiet", "--force", "origin", branch, cwd=work)
        return git("rev-parse", "HEAD", cwd=work).strip()


def _env_now() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No machine configuration, tokens or proxies leak into the tests."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Runner")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "runner@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Runner")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "runner@example.com")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("GITHUB_TOKEN", "GITLAB_TOKEN", "GIT_CONFIG_COUNT", "http_proxy", "https_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def make_remote(root: Path, files: dict[str, str], name: str = "app") -> Remote:
    bare = root / "acme" / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=root)
    seed = root / f"seed-{name}"
    git("init", "--quiet", "-b", "main", str(seed), cwd=root)
    for rel, text in files.items():
        target = seed / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "Initial commit", cwd=seed)
    git("push", "--quiet", str(bare), "main", cwd=seed)
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
    return Remote(bare, scratch)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return make_remote(tmp_path, SEED)


@pytest.fixture
def forge(remote: Remote) -> Iterator[ForgeServer]:
    with serve(TOKEN, {PROJECT: remote.path}) as server:
        yield server


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def bot(remote: Remote, forge: ForgeServer):  # type: ignore[no-untyped-def]
    """Run the bot against the test remote and forge; keyword arguments override the defaults."""
    from dopt.bot import run_bot

    def run(**overrides: object) -> Outcome:
        options: dict[str, object] = {
            "provider": "github",
            "base_url": forge.github_url,
            "token": TOKEN,
            "project": PROJECT,
        }
        options.update(overrides)
        repo = str(options.pop("repo", remote.path))
        if options["provider"] == "gitlab" and "base_url" not in overrides:
            options["base_url"] = forge.gitlab_url
        out, err = io.StringIO(), io.StringIO()
        code = run_bot(repo, out=out, err=err, **options)  # type: ignore[arg-type]
        return Outcome(code, out.getvalue(), err.getvalue())

    return run
