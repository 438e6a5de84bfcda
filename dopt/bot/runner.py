"""``dopt bot``: fix a repository's Dockerfiles and propose the result as a pull/merge request.

The order of the steps is what makes the bot safe to run unattended, e.g. on a schedule:

1. Clone into a temporary folder. The user's repository or working copy is only read.
2. If the bot's branch exists and carries a commit the bot did not make, stop (exit 1): someone
   is working on it, and a force-push would throw their work away.
3. Fix, commit locally. Nothing to fix: stop, nothing is pushed or opened.
4. Ask the provider for the open pull request of the branch. This is the first call that needs
   the token, so a bad token, a wrong project or an unreachable server stops the run before
   anything is pushed.
5. Push - only when the branch's changes differ from what is already there, and with a lease so
   a concurrent push is never overwritten - then open the pull request or update the open one.

Running it again is therefore cheap and quiet: same fixes, same branch, same pull request.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dopt.bot import changes as bot_changes
from dopt.bot import pins as bot_pins
from dopt.bot.forge import AlreadyExists, Forge, ForgeError, default_base_url, make_forge, parse_remote, redact
from dopt.bot.git import BOT_EMAIL, BOT_NAME, Git, GitError, git_env, run_git

DEFAULT_BRANCH = "dopt/fixes"
EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
PROVIDER_TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}


class BotError(Exception):
    """Stops the run with a message and exit status 2 (usage, git, configuration or API failure)."""


class Refused(Exception):
    """Stops the run with exit status 1: acting would overwrite someone else's work."""


@dataclass(frozen=True)
class Source:
    """Where to clone from and push to, and what to tell the user about it."""

    url: str
    local: bool
    note: str | None = None


def resolve_source(repo: str) -> Source:
    """A clone URL, a bare repository, or a working copy (whose ``origin`` is then used).

    A working copy is almost always a clone of the repository the pull request belongs on, and
    pushing the branch into the working copy would not let anyone open a pull request for it; so its
    ``origin`` is used when it has one.
    """
    path = Path(repo).expanduser()
    if not path.exists():
        if parse_remote(repo) is None and not repo.startswith("file://"):
            raise BotError(f"{repo}: no such folder, and not a clone URL")
        return Source(repo, local=repo.startswith("file://"))
    env = git_env()
    try:
        bare = run_git(["rev-parse", "--is-bare-repository"], cwd=path, env=env).strip() == "true"
    except GitError:
        raise BotError(f"{repo}: not a git repository") from None
    absolute = str(path.resolve())
    if bare:
        return Source(absolute, local=True)
    try:
        origin = run_git(["remote", "get-url", "origin"], cwd=path, env=env).strip()
    except GitError:
        return Source(absolute, local=True, note=f"{repo} has no 'origin' remote: the branch is pushed into it")
    if parse_remote(origin) is None:
        origin_path = Path(origin) if Path(origin).is_absolute() else (path / origin)
        origin = str(origin_path.resolve()) if origin_path.exists() else origin
        return Source(origin, local=True, note=f"using {repo}'s origin, {redact(origin)}")
    return Source(origin, local=False, note=f"using {repo}'s origin, {redact(origin)}")


def _say(out: TextIO, message: str) -> None:
    out.write(message + "\n")
    out.flush()


class _Run:
    """One run of the bot; the state shared by its steps."""

    def __init__(
        self,
        repo: str,
        *,
        provider: str,
        base_url: str | None,
        token: str | None,
        branch: str,
        unsafe_fixes: bool,
        verify: bool,
        dry_run: bool,
        project: str | None,
        out: TextIO,
        pin_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.repo = repo
        self.provider = provider.lower()
        self.base_url = base_url
        self.token = token
        self.branch = branch
        self.unsafe_fixes = unsafe_fixes
        self.verify = verify
        self.dry_run = dry_run
        self.project = project
        self.pin_options = pin_options or {}
        self.out = out

    def say(self, message: str) -> None:
        _say(self.out, message)

    def forge(self, source: Source) -> Forge | None:
        """The API client (None in a dry run, which never talks to the provider)."""
        if self.provider not in PROVIDER_TOKEN_ENV:
            raise BotError(f"unknown provider '{self.provider}' (choose github or gitlab)")
        remote = parse_remote(source.url) if not source.local else None
        project = self.project or (remote.path if remote else None)
        if self.dry_run:
            return None
        if not project:
            raise BotError(f"cannot tell which {self.provider} project {redact(source.url)} is; name it (owner/name)")
        token = self.token or os.environ.get(PROVIDER_TOKEN_ENV[self.provider], "")
        if not token:
            raise BotError(
                f"no token: set {PROVIDER_TOKEN_ENV[self.provider]} or pass --token "
                "(or use --dry-run to see the plan without one)"
            )
        base_url = self.base_url or default_base_url(self.provider, remote)
        try:
            return make_forge(self.provider, base_url=base_url, token=token, project=project)
        except ForgeError as err:
            raise BotError(str(err)) from None

    def git_config(self, source: Source, forge: Forge | None) -> dict[str, str]:
        """Authenticate pushes over HTTPS with the API token, for the provider's own host only."""
        remote = parse_remote(source.url) if not source.local else None
        if forge is None or remote is None or remote.scheme != "https" or remote.host != forge.web_host():
            return {}
        return {f"http.https://{remote.host}/.extraHeader": forge.git_auth_header()}

    def run(self) -> int:
        if self.provider not in PROVIDER_TOKEN_ENV:
            raise BotError(f"unknown provider '{self.provider}' (choose github or gitlab)")
        try:
            run_git(["check-ref-format", "--branch", self.branch], cwd=None, env=git_env())
        except GitError:
            raise BotError(f"'{self.branch}' is not a valid branch name") from None
        try:
            bot_pins.check_options(self.pin_options)
        except ValueError as err:
            raise BotError(str(err)) from None
        source = self.resolve()
        forge = self.forge(source)
        env = git_env(self.git_config(source, forge))
        with tempfile.TemporaryDirectory(prefix="dopt-bot-") as scratch:
            return self.in_clone(source, forge, env, Path(scratch))

    def resolve(self) -> Source:
        source = resolve_source(self.repo)
        if source.note:
            self.say(source.note)
        return source

    def in_clone(self, source: Source, forge: Forge | None, env: dict[str, str], scratch: Path) -> int:
        from dopt.optimizer.config import ConfigError

        clone = scratch / "repo"
        args = ["clone", "--quiet", "--no-tags"]
        if not source.local:
            args.append("--filter=blob:none")  # history without file contents: fast on big repositories
        try:
            run_git([*args, "--", source.url, str(clone)], cwd=scratch, env=env)
        except GitError as err:
            raise BotError(f"cannot clone {redact(source.url)}: {err}") from None
        git = Git(clone, env)
        base = git.try_run("symbolic-ref", "--quiet", "--short", "HEAD")
        head = git.rev("HEAD")
        if not base or not head:
            raise BotError(f"{redact(source.url)} is empty: nothing to fix")
        base = base.strip()
        if base == self.branch:
            raise BotError(f"the bot's branch '{self.branch}' is the default branch; choose another --branch")

        kind = forge.kind if forge else ("merge request" if self.provider == "gitlab" else "pull request")
        existing = git.rev(f"refs/remotes/origin/{self.branch}")
        if existing:
            self.refuse_if_edited(git, base, existing, kind)

        try:
            plan = bot_changes.fix_tree(clone, unsafe_fixes=self.unsafe_fixes, pin_options=self.pin_options)
        except ConfigError as err:
            raise BotError(f"the repository's dopt configuration is invalid: {err}") from None
        if not plan.files:
            if plan.examined:
                what = f"{plan.examined} Dockerfile{'s' if plan.examined != 1 else ''}"
                self.say(f"Nothing to fix in {what} on {base}; nothing pushed or opened.")
            else:
                self.say(f"No Dockerfile found on {base}; nothing pushed or opened.")
            for line in bot_changes.plan_summary(plan):
                self.say(line)
            if existing:
                self.say(f"Note: the branch {self.branch} from an earlier run still exists; it was left as it is.")
            return EXIT_OK

        message = bot_changes.commit_message(plan)
        git.run("switch", "--quiet", "-C", self.branch)
        git.run("add", "--", *plan.paths)
        identity = {
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
        git.run("commit", "--quiet", "--no-verify", "--no-gpg-sign", "-F", "-", stdin=message, env=identity)
        commit = git.rev("HEAD")
        assert commit is not None
        up_to_date = False
        if existing:
            since = git.run("merge-base", existing, head).strip()
            up_to_date = git.change_set(since, existing) == git.change_set(head, commit)

        self.say(
            f"{len(plan.changes)} fix{'es' if len(plan.changes) != 1 else ''} in "
            f"{len(plan.files)} Dockerfile{'s' if len(plan.files) != 1 else ''} on {base}:"
        )
        for line in bot_changes.plan_summary(plan):
            self.say(line)
        if existing and not up_to_date and self.keeps_pins(git, plan, existing):
            return EXIT_OK

        if self.dry_run:
            return self.print_plan(plan, message, base, kind, existing, up_to_date)
        assert forge is not None

        try:
            request = forge.find_open(self.branch, base)
        except ForgeError as err:
            raise BotError(str(err)) from None
        if up_to_date and request is not None:
            self.say(
                f"Already up to date: {kind} {forge.ref_prefix}{request.number} {request.url} "
                "(nothing pushed or changed)."
            )
            return EXIT_OK

        savings = self.measure(git, plan, head, scratch) if self.verify else None
        body = bot_changes.pull_request_body(plan, branch=self.branch, kind=kind, savings=savings)

        if not up_to_date:
            lease = f"--force-with-lease=refs/heads/{self.branch}:{existing or ''}"
            try:
                git.run("push", "--quiet", "--no-verify", lease, "origin", f"HEAD:refs/heads/{self.branch}")
            except GitError as err:
                raise BotError(f"cannot push {self.branch} to {redact(source.url)}: {err}") from None
            self.say(f"Pushed {self.branch} ({commit[:12]}).")
        else:
            self.say(f"{self.branch} already carries these fixes; not pushed.")

        try:
            if request is None:
                try:
                    request = forge.create(self.branch, base, bot_changes.TITLE, body)
                    self.say(f"Opened {kind} {forge.ref_prefix}{request.number}: {request.url}")
                    return EXIT_OK
                except AlreadyExists:
                    # Opened between our look-up and now (another run?): update that one instead.
                    request = forge.find_open(self.branch, base)
                    if request is None:
                        raise
            request = forge.update(request, body)
            self.say(f"Updated {kind} {forge.ref_prefix}{request.number}: {request.url}")
        except ForgeError as err:
            raise BotError(f"{err} (the branch {self.branch} was pushed; run the bot again to retry)") from None
        return EXIT_OK

    def refuse_if_edited(self, git: Git, base: str, existing: str, kind: str) -> None:
        foreign = [c for c in git.commits(f"refs/remotes/origin/{base}..{existing}") if not c.by_bot]
        if not foreign:
            return
        listing = "\n".join(f"  {c.sha[:12]} {c.author} <{c.author_email}>: {c.subject}" for c in foreign[:10])
        more = f"\n  ... and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        raise Refused(
            f"the branch {self.branch} has commits the bot did not make:\n{listing}{more}\n"
            f"Left it alone. Merge or close its {kind} and delete the branch, or run with another --branch."
        )

    def keeps_pins(self, git: Git, plan: bot_changes.FixPlan, existing: str) -> bool:
        """Leave the branch alone (True) when pushing would undo its pins because a look-up failed now."""
        at_risk = bot_pins.pins_at_risk(plan.failed_lookups, lambda path: git.try_run("show", f"{existing}:{path}"))
        if not at_risk:
            return False
        images = ", ".join(sorted({f.image for f in at_risk}))
        self.say(
            f"Left {self.branch} and its request as they are: the registry look-ups for {images} failed, and "
            "updating the branch now would undo the pins it carries. Run the bot again when the registry answers."
        )
        return True

    def measure(self, git: Git, plan: bot_changes.FixPlan, head: str, scratch: Path) -> str:
        """Build before/after for every changed Dockerfile in a pristine checkout of the base commit."""
        pristine = scratch / "base"
        git.run("worktree", "add", "--quiet", "--detach", str(pristine), head)
        self.say("Measuring the changes with dopt verify (builds every changed Dockerfile twice)...")
        files = []
        for fix in plan.files:
            context = (pristine / fix.path).parent
            files.append((fix.path, fix.source, fix.output, context))
        from dopt.bot.savings import measure_all

        unsafe = any(c.safety != "safe" for c in plan.changes)
        text, _ = measure_all(files, unsafe=unsafe)
        return text

    def print_plan(
        self, plan: bot_changes.FixPlan, message: str, base: str, kind: str, existing: str | None, up_to_date: bool
    ) -> int:
        if up_to_date:
            action = f"{self.branch} already carries these fixes: nothing to push; open a {kind} if none is open"
        elif existing:
            action = f"would update {self.branch} (force-push) and update its open {kind} (or open one)"
        else:
            action = f"would push {self.branch} and open a {kind} into {base}"
        self.say(f"Dry run: {action}. Nothing was pushed or opened.")
        self.say("\n--- commit message ---")
        self.out.write(message)
        self.say(f"--- {kind}: {bot_changes.TITLE} ---")
        note = "(measured with dopt verify when run without --dry-run)" if self.verify else None
        self.out.write(bot_changes.pull_request_body(plan, branch=self.branch, kind=kind, savings=note))
        self.out.flush()
        return EXIT_OK


def run_bot(
    repo: str,
    *,
    provider: str,
    base_url: str | None = None,
    token: str | None = None,
    branch: str = DEFAULT_BRANCH,
    unsafe_fixes: bool = False,
    verify: bool = False,
    dry_run: bool = False,
    project: str | None = None,
    pin_options: Mapping[str, Any] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Fix ``repo``'s Dockerfiles and open or update a pull/merge request; the exit status.

    ``repo`` is a clone URL or a local repository (a working copy's ``origin`` is used when it has
    one). ``provider`` is "github" or "gitlab"; ``base_url`` defaults to the public API or, for
    another host, that host's ``/api/v3`` (GitHub Enterprise) or ``/api/v4`` (GitLab); ``token``
    defaults to ``GITHUB_TOKEN`` / ``GITLAB_TOKEN``; ``project`` ("owner/name", "group/sub/name")
    defaults to the clone URL's path. Safe fixes only unless ``unsafe_fixes`` or the repository's
    configuration allows unsafe ones. ``verify`` adds measured size and rebuild time (needs Docker).
    ``dry_run`` clones and fixes, prints the commit and the description, and pushes and opens
    nothing (no token needed). ``pin_options`` (``pin``, ``pin-specificity``, ``update-pins``,
    ``registry-offline``, ``registry-mirrors``, ... as ``[tool.dopt.rules]`` spells them) override
    the repository's: the bot then pins base images and, with ``update-pins``, bumps pins their
    registry has moved past, as ``dopt fix --pin/--update-pins`` would (a bump is DO410's unsafe
    fix, applied without ``unsafe_fixes``); the description lists them and any look-up that failed.

    Exit status: 0 done (opened, updated, already up to date, or nothing to fix); 1 refused
    because someone else pushed to the bot's branch; 2 error (message on ``err``).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    run = _Run(
        repo,
        provider=provider,
        base_url=base_url,
        token=token,
        branch=branch,
        unsafe_fixes=unsafe_fixes,
        verify=verify,
        dry_run=dry_run,
        project=project,
        pin_options=pin_options,
        out=out,
    )
    try:
        return run.run()
    except Refused as refusal:
        _say(err, f"dopt bot: refused: {refusal}")
        return EXIT_REFUSED
    except (BotError, GitError, ForgeError) as failure:
        _say(err, f"dopt bot: error: {failure}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _say(err, "dopt bot: interrupted; nothing was left behind")
        return 130
