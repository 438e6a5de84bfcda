"""The few git operations the bot needs, run with the real ``git`` command.

The real command (not a library) is used so that whatever the user's git can reach - SSH keys,
credential helpers, ``insteadOf`` rewrites, proxies - the bot can reach too. Every call:

* never prompts (``GIT_TERMINAL_PROMPT=0``): a bot waiting for a password would hang a CI job;
* runs no hooks (``core.hooksPath=/dev/null``): the user's hooks belong to their own commits;
* can carry an ``Authorization`` header scoped to one host, passed through git's environment
  configuration (``GIT_CONFIG_COUNT``) rather than the command line, so the token does not show
  in the process list and never reaches another host.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dopt.bot.forge import redact

BOT_NAME = "dopt bot"
BOT_EMAIL = "dopt-bot@noreply.invalid"  # .invalid (RFC 2606) can never be a real person's address
TRAILER = "Dopt-Bot"  # the commit-message trailer that marks a commit as the bot's


class GitError(Exception):
    """A git command failed; the message quotes git's own explanation."""


def git_env(extra_config: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every git call: no prompts, no hooks, plus ``extra_config``."""
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    config = {"core.hooksPath": os.devnull, "advice.detachedHead": "false", **(extra_config or {})}
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for key, value in config.items():
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    return env


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    author_email: str
    committer_email: str
    subject: str
    trailer: str

    @property
    def by_bot(self) -> bool:
        """Made by the bot and not amended by anyone else since."""
        return bool(self.trailer) and self.committer_email == BOT_EMAIL and self.author_email == BOT_EMAIL


class Git:
    """git commands in one repository folder."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.env = dict(env)

    def run(self, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Run ``git args`` and return its standard output; :class:`GitError` when it fails."""
        return run_git(args, cwd=self.cwd, env={**self.env, **(env or {})}, stdin=stdin)

    def try_run(self, *args: str) -> str | None:
        """Standard output, or None when git exits non-zero (for questions like "does this ref exist")."""
        try:
            return self.run(*args)
        except GitError:
            return None

    def rev(self, ref: str) -> str | None:
        out = self.try_run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return out.strip() if out else None

    def commits(self, revision_range: str) -> list[Commit]:
        fmt = f"%H%x00%an%x00%ae%x00%ce%x00%s%x00%(trailers:key={TRAILER},valueonly,separator=%x2C)%x1e"
        out = self.run("log", f"--format={fmt}", revision_range, "--")
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, author, author_email, committer_email, subject, trailer = (record.split("\x00") + [""] * 6)[:6]
            commits.append(Commit(sha, author, author_email, committer_email, subject, trailer.strip()))
        return commits

    def change_set(self, old: str, new: str) -> frozenset[str]:
        """What ``new`` changes relative to ``old``: (modes, blobs, status, path) of every changed file."""
        out = self.run("diff", "--raw", "--no-abbrev", "--no-renames", "-z", old, new, "--")
        fields = out.split("\x00")
        entries = set()
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if meta:
                entries.add(f"{meta} {path}")
        return frozenset(entries)


def run_git(args: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (the bot needs the git command on PATH)") from None
    if done.returncode != 0:
        detail = redact((done.stderr or done.stdout).strip()) or f"exit status {done.returncode}"
        raise GitError(f"git {args[0]} failed: {detail}")
    return done.stdout
