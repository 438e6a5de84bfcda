"""DO300 install-before-copy: install dependencies from their manifests before copying the source.

## What it does
Finds a broad copy of the source -- ``COPY . <dest>``, ``ADD . <dest>`` or a copy of a source
folder -- followed, in the same stage, by a dependency install that only needs the dependency
manifests (``requirements.txt``, ``package.json`` and its lock file, ``go.mod`` ...). It copies just
those manifests first, runs the install, and copies the rest afterwards:

* when the whole ``RUN`` only installs dependencies (``npm ci``, ``pip install -r ...``,
  ``bundle install``), the ``RUN`` stays where it was and the broad copy moves after it;
* when the step also needs the source (``go build``, ``poetry install`` of the project itself,
  ``composer install`` with its autoloader, ``pip install -r r.txt -e .``), a deps-only step is
  added first (``go mod download``, ``poetry install --no-root``, ``uv sync --no-install-project``,
  ``composer install --no-scripts --no-autoloader``, ``pip install -r r.txt``, ``dotnet restore``,
  ``mvn dependency:go-offline``, ``cargo fetch``) and the original step stays after the copy.

The manifests come from the real build context (the Dockerfile's folder or ``--context``): only
files that exist and that ``.dockerignore`` lets through are copied; ``-r``/``-c`` includes of a
requirements file are followed and copied too. ``--chown``, ``--chmod`` and ``--link`` of the broad
copy are kept on the manifest copy, and relative destinations are resolved against the WORKDIR in
force. Instructions between the copy and the install stay where they are.

Ecosystems: pip (and ``uv pip``), Pipenv, Poetry, uv, npm, Yarn, pnpm, Go modules, Bundler,
Composer, Maven, Cargo and .NET.

Nothing is changed, and the finding says why, when the install needs the source tree: ``-e .``,
local paths or ``file:`` URLs in requirements, ``path`` dependencies, npm/Yarn/pnpm workspaces, Go
``replace`` directives to local folders, ``go.work``, multi-module Maven builds, Cargo workspaces,
.NET solutions or project references, a Gemfile with ``gemspec``; also when a manifest is excluded
by ``.dockerignore``, when the copy would bring a ``node_modules``/``vendor``/``.venv`` from the
context over the installed one, when the copy comes ``--from`` another stage or image, or when no
build context can be read (then dopt cannot tell which manifests exist).

## Why
Docker reuses a cached layer only while everything it depends on is unchanged. After ``COPY . .``
every edit to any source file invalidates the cache, so the dependency install below it runs again
on every rebuild -- usually the slowest step of the build. Copying the manifests first makes the
install depend only on them: code changes rebuild in seconds.

## Example
```dockerfile
FROM python:3.11
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
```
becomes
```dockerfile
FROM python:3.11
WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
CMD ["python", "app.py"]
```

## Fix safety
Safe when the moved install provably sees the same files: it reads only the manifests (all of
which are copied), the commands between the broad copy and the install do not read or write the
copied files (package-manager commands, ENV, USER ...), and nothing the install writes is
overwritten by the later copy. A deps-only step added before an unchanged original step is safe
when it cannot change what the original step produces.

Unsafe, and the message says what it assumes, when the fix has to guess: npm/Yarn/pnpm projects
with lifecycle scripts (``postinstall``, ``prepare`` ...) get an early install with
``--ignore-scripts`` and keep the original install after the copy; Composer projects with scripts;
Maven (``dependency:go-offline`` may resolve more or fail differently); Cargo (a throwaway
``src/main.rs`` lets ``cargo fetch`` read a manifest without sources); a Gemfile with Ruby code dopt
does not understand; a ``RUN`` between the copy and the install that dopt cannot prove independent
of the copied files; a WORKDIR inside the destination between them.
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.semantic import Stage, expand
from dopt.optimizer.shell import Command, Invocation, ShellScript, Word, invocation_of, parse_shell
from dopt.optimizer.syntax import Flag, Instruction, Trivia
from dopt.transforms._context import (
    BuildContext,
    go_clean,
    is_local_requirement,
    is_url,
    open_context,
    requirement_name,
    resolve_requirements,
)

# The base image's WORKDIR when the Dockerfile never sets one: unknown, but the same everywhere in
# a stage until a WORKDIR changes it. A NUL byte cannot occur in a real path.
_BASE = "/\0workdir"
_LINE_LIMIT = 100

# ----------------------------------------------------------------------------------------------
# Paths inside the image
# ----------------------------------------------------------------------------------------------


def _join(base: str, rel: str) -> str:
    return go_clean(rel) if rel.startswith("/") else go_clean(f"{base}/{rel}")


def _under(path: str, folder: str) -> bool:
    if ("\0" in path) != ("\0" in folder) and folder != "/":
        return False
    if "\0" in path and folder == "/":
        return False
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _relative(path: str, folder: str) -> str:
    if path == folder:
        return "."
    return path[len(folder.rstrip("/")) + 1 :]


def _show(path: str) -> str:
    """A path for messages: relative to the base image's WORKDIR when that is unknown."""
    if path == _BASE:
        return "."
    return path.removeprefix(_BASE + "/")


def _overlap(a: str, b: str) -> bool:
    return _under(a, b) or _under(b, a)


def _workdir(ctx: Context, ins: Instruction) -> str | None:
    """WORKDIR in force before ``ins``: a path, ``_BASE`` when the base image's, None when unknown."""
    scope = ctx.model.scope_of(ins)
    if scope.workdir is not None:
        return scope.workdir
    stage = ctx.model.stage_of(ins)
    if stage is None:
        return None
    # None also means "a WORKDIR dopt could not resolve": only trust _BASE when no WORKDIR precedes.
    before = [i for i in _stage_chain(stage) if i.start < ins.start]
    return None if any(i.name == "WORKDIR" for i in before) else _BASE


def _stage_chain(stage: Stage) -> list[Instruction]:
    """The stage's instructions, preceded by those of the stages it is built FROM."""
    chain: list[Instruction] = []
    current: Stage | None = stage
    while current is not None:
        chain = list(current.instructions) + chain
        current = current.parent
    return chain


# ----------------------------------------------------------------------------------------------
# The broad copy and the files it brings
# ----------------------------------------------------------------------------------------------

_CARRIED_FLAGS = ("chown", "chmod", "link")
_UNSUPPORTED_FLAGS = ("parents", "exclude", "checksum", "keep-git-dir", "unpack")


@dataclass
class _Copy:
    ins: Instruction
    source: str  # the source folder, relative to the context root ("." for the whole context)
    dest: str  # the destination folder in the image (absolute, or under _BASE)
    dest_text: str  # the destination as written
    absolute: bool  # the destination (after variable expansion) is an absolute path
    flags: tuple[Flag, ...]  # flags kept on the manifest copy
    from_stage: str | None
    workdir: str


def _broad_copy(ctx: Context, ins: Instruction, context: BuildContext | None) -> _Copy | None:
    if ins.name not in ("COPY", "ADD") or ins.heredocs or len(ins.values) != 2:
        return None
    names = {f.name for f in ins.flags}
    if names & set(_UNSUPPORTED_FLAGS):
        return None
    scope = ctx.model.scope_of(ins)
    variables = scope.variables()
    raw_source, raw_dest = ins.values
    source = expand(raw_source, variables, ctx.document.escape)
    dest = expand(raw_dest, variables, ctx.document.escape)
    if source is None or dest is None or not dest or any(ch in source for ch in "*?["):
        return None
    if is_url(source) or source.startswith("git@"):
        return None
    from_stage = next((f.value for f in ins.flags if f.name == "from"), None)
    normal = go_clean("/" + source.lstrip("/"))[1:] or "."
    if from_stage is None:
        if context is not None:
            if normal != "." and not context.is_dir(normal):
                return None
        elif normal != "." and not source.endswith("/"):
            return None
    elif normal != "." and not source.endswith("/"):
        return None
    workdir = _workdir(ctx, ins)
    if dest.startswith("/"):
        dest_abs = go_clean(dest)
    elif workdir is None:
        return None
    else:
        dest_abs = _join(workdir, dest)
    flags = tuple(f for f in ins.flags if f.name in _CARRIED_FLAGS)
    return _Copy(ins, normal, dest_abs, raw_dest, dest.startswith("/"), flags, from_stage, workdir or _BASE)


@dataclass
class _View:
    """The files under the copy's destination, read from the build context."""

    context: BuildContext
    copy: _Copy

    def context_path(self, image: str) -> str | None:
        if not _under(image, self.copy.dest):
            return None
        rel = _relative(image, self.copy.dest)
        if self.copy.source == ".":
            return rel
        return self.copy.source if rel == "." else f"{self.copy.source}/{rel}"

    def file(self, image: str) -> bool:
        path = self.context_path(image)
        return path is not None and self.context.is_file(path)

    def dir(self, image: str) -> bool:
        path = self.context_path(image)
        return path is not None and self.context.is_dir(path)

    def exists(self, image: str) -> bool:
        return self.file(image) or self.dir(image)

    def read(self, image: str) -> str | None:
        path = self.context_path(image)
        return None if path is None else self.context.read_text(path)

    def listdir(self, image: str) -> list[str]:
        path = self.context_path(image)
        return [] if path is None else self.context.listdir(path)

    def why_missing(self, image: str) -> str:
        """Why ``image`` cannot be copied from the context, as a sentence fragment."""
        path = self.context_path(image)
        shown = _show(image)
        if path is None:
            return f"{shown} is not under {_show(self.copy.dest)}, so the broad copy does not provide it"
        pattern = self.context.ignored_by(path)
        if pattern is not None and self.context.on_disk(path):
            ignore = self.context.ignore_path.name if self.context.ignore_path else ".dockerignore"
            return f"{path} is excluded by {ignore} (line {pattern.line}: `{pattern}`), so it cannot be copied"
        return f"{path} is not in the build context"


# ----------------------------------------------------------------------------------------------
# What an install command needs
# ----------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one install command reads and how to run it before the source is copied."""

    ecosystem: str
    command: Command
    manifest_dir: str
    files: list[str] = field(default_factory=list)  # image paths to copy first
    dirs: list[str] = field(default_factory=list)  # image folders to copy first
    deps_text: str | None = None  # the deps-only command; None: the command itself
    keep_after: bool = False  # the original command still runs after the copy
    unsafe: list[str] = field(default_factory=list)  # what the fix assumes
    blockers: list[str] = field(default_factory=list)  # why there is no fix
    outputs: list[tuple[str, bool]] = field(default_factory=list)  # (path, blocks the fix) it writes
    source_only: bool = False  # installs the project from source; nothing can run earlier

    def add_file(self, path: str) -> None:
        if path not in self.files:
            self.files.append(path)

    def add_dir(self, path: str) -> None:
        if path not in self.dirs:
            self.dirs.append(path)


@dataclass
class _Site:
    """An install command found in a RUN, with what the handlers need to judge it."""

    script: ShellScript
    command: Command
    inv: Invocation
    cwd: str
    view: _View | None  # None: classify from the command alone
    env: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.script.text

    def words_after(self, index: int | None) -> list[Word]:
        return list(self.command.words[(index if index is not None else self.inv.program_index) + 1 :])

    def command_text(self, inserts: Sequence[tuple[int, str]] = (), removals: Sequence[tuple[int, int]] = ()) -> str:
        """The command as written, with insertions and removals (script offsets)."""
        edits = sorted([(p, p, t) for p, t in inserts] + [(s, e, "") for s, e in removals])
        out, cursor = [], self.command.start
        for start, end, text in edits:
            out += [self.text[cursor:start], text]
            cursor = end
        out.append(self.text[cursor : self.command.end])
        return "".join(out)

    def through_program(self) -> str:
        """Assignments, wrappers and the program word: ``CGO_ENABLED=0 go``."""
        return self.text[self.command.start : self.inv.program_word.end]

    def after_subcommand(self, extra: str) -> str:
        word = self.inv.subcommand_word or self.inv.program_word
        return self.command_text(inserts=[(word.end, extra)])

    def word_removal(self, word: Word) -> tuple[int, int]:
        start = word.start
        while start > self.command.start and self.text[start - 1] in " \t":
            start -= 1
        return start, word.end

    def plan(self, ecosystem: str, manifest_dir: str | None = None) -> _Plan:
        return _Plan(ecosystem, self.command, manifest_dir or self.cwd)

    def require(self, plan: _Plan, path: str, why: str = "") -> bool:
        """Copy ``path`` first; without it the install cannot run early (a blocker)."""
        if self.view is None:
            return False
        if self.view.file(path):
            plan.add_file(path)
            return True
        plan.blockers.append(self.view.why_missing(path) + (f" ({why})" if why else ""))
        return False

    def optional(self, plan: _Plan, *paths: str) -> None:
        if self.view is None:
            return
        for path in paths:
            if self.view.file(path):
                plan.add_file(path)

    def optional_dir(self, plan: _Plan, *paths: str) -> None:
        if self.view is None:
            return
        for path in paths:
            if self.view.dir(path):
                plan.add_dir(path)

    def read(self, path: str) -> str | None:
        return None if self.view is None else self.view.read(path)

    def exists(self, path: str) -> bool:
        return self.view is not None and self.view.exists(path)


@dataclass
class _Option:
    name: str
    value: str | None
    words: tuple[Word, ...]


def _scan(words: Sequence[Word], value_options: frozenset[str]) -> tuple[list[_Option], list[Word], bool]:
    """Options (with values) and operands; the flag is True when a word is not static."""
    options: list[_Option] = []
    operands: list[Word] = []
    dynamic = False
    i = 0
    only_operands = False
    while i < len(words):
        word = words[i]
        value = word.value
        if value is None:
            dynamic = True
            operands.append(word)
            i += 1
            continue
        if only_operands or value == "-" or not value.startswith("-"):
            operands.append(word)
        elif value == "--":
            only_operands = True
        elif value.startswith("--"):
            name, eq, inline = value.partition("=")
            if eq:
                options.append(_Option(name, inline, (word,)))
            elif name in value_options and i + 1 < len(words):
                following = words[i + 1]
                dynamic |= following.value is None
                options.append(_Option(name, following.value, (word, following)))
                i += 1
            else:
                options.append(_Option(name, None, (word,)))
        else:
            short = value[:2]
            if short in value_options:
                if len(value) > 2:
                    options.append(_Option(short, value[2:].removeprefix("="), (word,)))
                elif i + 1 < len(words):
                    following = words[i + 1]
                    dynamic |= following.value is None
                    options.append(_Option(short, following.value, (word, following)))
                    i += 1
                else:
                    options.append(_Option(short, None, (word,)))
            else:
                options.append(_Option(value, None, (word,)))
        i += 1
    return options, operands, dynamic


def _has(options: Sequence[_Option], *names: str) -> bool:
    for option in options:
        if option.name in names:
            return True
        bundled = not option.name.startswith("--") and len(option.name) > 2
        if bundled and any(len(n) == 2 and not n.startswith("--") and n[1] in option.name[1:] for n in names):
            return True
    return False


def _values(options: Sequence[_Option], *names: str) -> list[str | None]:
    return [o.value for o in options if o.name in names]


# -- Python ------------------------------------------------------------------------------------

_PIP_VALUES = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
        "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--src",
        "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi", "--report",
        "-C", "--config-settings", "--global-option", "--no-binary", "--only-binary", "--progress-bar",
        "--root-user-action", "--python", "--log", "--proxy", "--retries", "--timeout", "--exists-action",
        "--trusted-host", "--cert", "--client-cert", "--cache-dir", "--use-feature", "--use-deprecated",
        "--keyring-provider", "-p", "--index", "--default-index", "--index-strategy", "--resolution",
        "--prerelease", "--reinstall-package", "-P", "--upgrade-package", "--link-mode", "--extra",
        "--group", "--overrides", "--build-constraints", "--python-platform",
    }
)  # fmt: skip


def _pip(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.program == "pip" and inv.subcommand == "install":
        words = site.words_after(inv.subcommand_index)
        sync = False
    elif inv.program == "uv" and inv.subcommand == "pip":
        rest = site.words_after(inv.subcommand_index)
        first = next((i for i, w in enumerate(rest) if not (w.value or "-").startswith("-")), None)
        if first is None or rest[first].value not in ("install", "sync"):
            return None
        sync = rest[first].value == "sync"
        words = rest[:first] + rest[first + 1 :]
    else:
        return None
    options, operands, dynamic = _scan(words, _PIP_VALUES)
    files = [v for v in _values(options, "-r", "--requirement", "-c", "--constraint") if v]
    if sync:
        files += [w.value for w in operands if w.value]
        operands = []
    local_operands = [w for w in operands if w.value is not None and is_local_requirement(w.value)]
    local_editables = [
        o for o in options if o.name in ("-e", "--editable") and o.value is not None and not _is_vcs(o.value)
    ]
    if not files:
        if local_operands or local_editables:
            plan = site.plan("pip")
            plan.source_only = True
            shown = (local_operands[0].value if local_operands else f"-e {local_editables[0].value}") or "."
            plan.blockers.append(
                f"`{shown}` installs the project from the source tree and no requirements file lists its "
                "dependencies, so there is nothing to install before the copy"
            )
            return plan
        return None
    first = next((f for f in files if not is_url(f)), None)
    plan = site.plan("pip", posixpath.dirname(_join(site.cwd, first)) if first else site.cwd)
    if dynamic:
        plan.blockers.append("the install uses a variable dopt cannot resolve")
    for value in _values(options, "-f", "--find-links"):
        if value and not is_url(value):
            plan.blockers.append(f"`--find-links {value}` reads a local folder")
    for value in _values(options, "-t", "--target", "--prefix", "--root"):
        if value and not value.startswith("/"):
            plan.outputs.append((_join(site.cwd, value), True))
    if local_operands or local_editables:
        removals = [site.word_removal(w) for w in local_operands]
        for option in local_editables:
            removals += [site.word_removal(w) for w in option.words]
        plan.deps_text = site.command_text(removals=removals)
        plan.keep_after = True
    if site.view is None:
        return plan
    view = site.view
    local = [f for f in files if not is_url(f) and _under(_join(site.cwd, f), view.copy.dest)]
    resolved = resolve_requirements(site.read, local, site.cwd)
    for path in resolved.files:
        plan.add_file(path)
    for missing in resolved.missing:
        where = ""
        if missing.included_by is not None:
            including, line = missing.included_by
            where = f" (included by {view.context_path(including) or _show(including)} line {line})"
        plan.blockers.append(view.why_missing(missing.path) + where)
    for need in resolved.needs_source:
        shown = view.context_path(need.path) or _show(need.path)
        plan.blockers.append(f"{shown} line {need.line}: {need.reason}")
    return plan


def _is_vcs(value: str) -> bool:
    return value.lower().startswith(("git+", "hg+", "svn+", "bzr+")) or is_url(value)


def _toml(site: _Site, path: str, plan: _Plan) -> dict[str, Any] | None:
    text = site.read(path)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        plan.blockers.append(f"{_show(path)} does not parse ({err})")
        return None


def _local_sources(table: Any) -> list[str]:
    """Names of dependencies given as ``{path = ...}`` (or a local ``file``) in a TOML table."""
    found = []
    if isinstance(table, dict):
        for name, spec in table.items():
            specs = spec if isinstance(spec, list) else [spec]
            if any(
                isinstance(s, dict)
                and ("path" in s or ("file" in s and not is_url(str(s["file"]))) or s.get("workspace"))
                for s in specs
            ):
                found.append(name)
    return found


def _pipenv(site: _Site) -> _Plan | None:
    if site.inv.subcommand not in ("install", "sync"):
        return None
    options, operands, _ = _scan(site.words_after(site.inv.subcommand_index), frozenset({"--python", "--categories"}))
    if operands or _has(options, "-e", "--editable", "-r", "--requirements"):
        return None
    plan = site.plan("pipenv")
    if site.view is None:
        return plan
    pipfile = _join(site.cwd, "Pipfile")
    if site.require(plan, pipfile):
        site.optional(plan, _join(site.cwd, "Pipfile.lock"))
        data = _toml(site, pipfile, plan) or {}
        local = [n for table in ("packages", "dev-packages") for n in _local_sources(data.get(table))]
        if local:
            plan.blockers.append(f"Pipfile installs {', '.join(local)} from a local path, which needs the source")
    if site.exists(_join(site.cwd, ".env")):
        plan.unsafe.append("pipenv loads .env, which the early install does not see; assumes it does not matter")
    plan.outputs.append((_join(site.cwd, ".venv"), True))
    return plan


def _poetry(site: _Site) -> _Plan | None:
    if site.inv.subcommand not in ("install", "sync"):
        return None
    options, operands, _ = _scan(
        site.words_after(site.inv.subcommand_index),
        frozenset({"--with", "--without", "--only", "-E", "--extras", "-C", "--directory", "-P", "--project"}),
    )
    if operands or _has(options, "--only-root"):
        return None
    plan = site.plan("poetry")
    if _has(options, "-C", "--directory", "-P", "--project"):
        plan.blockers.append("the install names another project folder (--directory/--project)")
        return plan
    no_root = _has(options, "--no-root")
    pyproject = _join(site.cwd, "pyproject.toml")
    data: dict[str, Any] = {}
    if site.view is not None and site.require(plan, pyproject):
        site.optional(plan, _join(site.cwd, "poetry.lock"), _join(site.cwd, "poetry.toml"))
        data = _toml(site, pyproject, plan) or {}
        poetry = data.get("tool", {}).get("poetry", {})
        tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
        tables += [g.get("dependencies") for g in poetry.get("group", {}).values() if isinstance(g, dict)]
        local = [n for t in tables for n in _local_sources(t)]
        local += [requirement_name(d) for d in data.get("project", {}).get("dependencies", []) if "file:" in str(d)]
        if local:
            plan.blockers.append(f"pyproject.toml installs {', '.join(local)} from a local path")
        no_root = no_root or poetry.get("package-mode") is False
    if not no_root:
        plan.deps_text = site.after_subcommand(" --no-root")
        plan.keep_after = True
    plan.outputs.append((_join(site.cwd, ".venv"), True))
    return plan


def _uv(site: _Site) -> _Plan | None:
    if site.inv.subcommand == "pip":
        return _pip(site)
    if site.inv.subcommand != "sync":
        return None
    options, operands, _ = _scan(
        site.words_after(site.inv.subcommand_index),
        frozenset({"--directory", "--project", "--package", "--extra", "--group", "--only-group", "--python", "-p"}),
    )
    if operands:
        return None
    plan = site.plan("uv")
    if _has(options, "--directory", "--project"):
        plan.blockers.append("the install names another project folder (--directory/--project)")
        return plan
    pyproject = _join(site.cwd, "pyproject.toml")
    if site.view is not None and site.require(plan, pyproject):
        site.optional(plan, _join(site.cwd, "uv.lock"), _join(site.cwd, ".python-version"), _join(site.cwd, "uv.toml"))
        data = _toml(site, pyproject, plan) or {}
        uv = data.get("tool", {}).get("uv", {})
        if "workspace" in uv:
            plan.blockers.append("pyproject.toml declares a uv workspace: every member's pyproject.toml is needed")
        local = _local_sources(uv.get("sources"))
        if local:
            plan.blockers.append(f"pyproject.toml takes {', '.join(local)} from a local path or workspace")
        dynamic = set(data.get("project", {}).get("dynamic", []))
        if dynamic & {"dependencies", "optional-dependencies"}:
            plan.blockers.append("pyproject.toml declares its dependencies as dynamic, computed from the source")
    if not _has(options, "--no-install-project", "--only-dev"):
        plan.deps_text = site.after_subcommand(" --no-install-project")
        plan.keep_after = True
    venv = site.env.get("UV_PROJECT_ENVIRONMENT", ".venv")
    plan.outputs.append((_join(site.cwd, venv), True))
    return plan


# -- JavaScript --------------------------------------------------------------------------------

_LIFECYCLE = ("preinstall", "install", "postinstall", "prepublish", "preprepare", "prepare", "postprepare")
_NPM_VALUES = frozenset(
    {"--prefix", "-C", "-w", "--workspace", "--registry", "--cache", "--loglevel", "--userconfig", "--omit",
     "--include", "--only", "--install-strategy", "--tag", "--cwd", "--cache-folder", "--network-timeout",
     "--modules-folder", "--mutex", "--mode", "--dir", "-F", "--filter", "--store-dir", "--reporter"}
)  # fmt: skip
_DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "resolutions",
               "overrides")  # fmt: skip


def _package_json(site: _Site, plan: _Plan, folder: str) -> dict[str, Any] | None:
    path = _join(folder, "package.json")
    if not site.require(plan, path):
        return None
    try:
        data = json.loads(site.read(path) or "")
    except ValueError as err:
        plan.blockers.append(f"{_show(path)} is not valid JSON ({err})")
        return None
    return data if isinstance(data, dict) else None


def _local_js_deps(data: Mapping[str, Any], allowed_patch_dir: str | None = None) -> list[str]:
    found = []
    for key in _DEP_FIELDS:
        table = data.get(key)
        if not isinstance(table, dict):
            continue
        for name, spec in table.items():
            if not isinstance(spec, str):
                continue
            if spec.startswith(("file:", "link:", "portal:", "./", "../", "/", "~/")):
                found.append(name)
            elif "patch:" in spec:
                target = spec.rsplit("#", 1)[-1]
                if not (allowed_patch_dir and target.lstrip("./~").startswith(allowed_patch_dir)):
                    found.append(name)
    return found


def _node_common(site: _Site, plan: _Plan, data: Mapping[str, Any], tool: str) -> list[str]:
    """Checks shared by npm, Yarn and pnpm; returns the lifecycle scripts that would run."""
    if data.get("workspaces"):
        plan.blockers.append(f"package.json declares {tool} workspaces: every member's package.json is needed")
    local = _local_js_deps(data, ".yarn/patches" if tool == "yarn" else None)
    if local:
        plan.blockers.append(f"package.json takes {', '.join(local)} from a local path (file:, link:, portal:, patch:)")
    scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
    found = [name for name in _LIFECYCLE if name in scripts]
    if tool == "npm" and "dependencies" in scripts:
        found.append("dependencies")
    if "install" not in found and site.exists(_join(plan.manifest_dir, "binding.gyp")):
        found.append("install (node-gyp rebuild for binding.gyp)")
    plan.outputs.append((_join(plan.manifest_dir, "node_modules"), True))
    return found


def _lifecycle_split(site: _Site, plan: _Plan, scripts: list[str], flag: str, tool: str, reinstall: bool) -> None:
    names = ", ".join(f"`{s}`" for s in scripts)
    plan.deps_text = site.after_subcommand(f" {flag}")
    plan.keep_after = True
    again = (
        "runs again after the copy and reinstalls everything with the scripts (the image keeps both installs "
        "in its layers)"
        if reinstall
        else "runs again after the copy, runs those scripts, and is assumed to run dependencies' own install "
        "scripts too (packages already installed may skip them)"
    )
    plan.unsafe.append(
        f"package.json has lifecycle script(s) {names} that may read the source: the early install uses "
        f"`{flag}` and the original `{tool}` step {again}"
    )


def _npm(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.subcommand not in ("ci", "clean-install", "ic", "install-clean", "isntall", "install", "i", "in"):
        return None
    options, operands, _ = _scan(site.words_after(inv.subcommand_index), _NPM_VALUES)
    if operands or _has(options, "-g", "--global"):
        return None
    plan = site.plan("npm")
    if _has(options, "--prefix", "-C", "-w", "--workspace", "--workspaces", "-ws"):
        plan.blockers.append("the install names another folder or a workspace")
        return plan
    if site.view is None:
        return plan
    data = _package_json(site, plan, site.cwd)
    site.optional(
        plan,
        _join(site.cwd, "package-lock.json"),
        _join(site.cwd, "npm-shrinkwrap.json"),
        _join(site.cwd, ".npmrc"),
    )
    if data is not None:
        scripts = _node_common(site, plan, data, "npm")
        if scripts and not _has(options, "--ignore-scripts"):
            reinstall = inv.subcommand in ("ci", "clean-install", "ic", "install-clean")
            _lifecycle_split(site, plan, scripts, "--ignore-scripts", "npm", reinstall)
    return plan


def _yarn(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.subcommand not in (None, "install"):
        return None
    words = site.words_after(inv.subcommand_index)
    options, operands, _ = _scan(words, _NPM_VALUES)
    if inv.subcommand is None:
        options, operands, _ = _scan(site.words_after(inv.program_index), _NPM_VALUES)
    if operands:
        return None
    plan = site.plan("yarn")
    if _has(options, "--cwd", "--modules-folder"):
        plan.blockers.append("the install names another folder (--cwd/--modules-folder)")
        return plan
    if site.view is None:
        return plan
    folder = site.cwd
    data = _package_json(site, plan, folder)
    site.optional(
        plan,
        _join(folder, "yarn.lock"),
        _join(folder, ".yarnrc"),
        _join(folder, ".yarnrc.yml"),
        _join(folder, ".npmrc"),
        _join(folder, ".pnp.cjs"),
        _join(folder, ".pnp.loader.mjs"),
    )
    site.optional_dir(
        plan,
        _join(folder, ".yarn/releases"),
        _join(folder, ".yarn/plugins"),
        _join(folder, ".yarn/patches"),
        _join(folder, ".yarn/cache"),
    )
    berry = site.exists(_join(folder, ".yarnrc.yml")) or (
        data is not None and re.match(r"yarn@[2-9]", str(data.get("packageManager", ""))) is not None
    )
    if data is not None:
        scripts = _node_common(site, plan, data, "yarn")
        if berry:
            scripts = [s for s in scripts if s in ("preinstall", "install", "postinstall")]
        if scripts and not _has(options, "--ignore-scripts", "--mode"):
            flag = "--mode=skip-build" if berry else "--ignore-scripts"
            _lifecycle_split(site, plan, scripts, flag, "yarn", False)
    for generated in (".yarn/unplugged", ".yarn/install-state.gz"):
        plan.outputs.append((_join(folder, generated), False))
    return plan


def _pnpm(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.subcommand not in ("install", "i"):
        return None
    options, operands, _ = _scan(site.words_after(inv.subcommand_index), _NPM_VALUES)
    if operands or _has(options, "-g", "--global"):
        return None
    plan = site.plan("pnpm")
    if _has(options, "-C", "--dir", "-F", "--filter", "-r", "--recursive"):
        plan.blockers.append("the install names another folder or filters workspace packages")
        return plan
    if site.view is None:
        return plan
    folder = site.cwd
    data = _package_json(site, plan, folder)
    site.optional(plan, _join(folder, "pnpm-lock.yaml"), _join(folder, ".npmrc"))
    workspace = _join(folder, "pnpm-workspace.yaml")
    text = site.read(workspace)
    if text is not None:
        if re.search(r"^packages\s*:", text, re.MULTILINE):
            plan.blockers.append(
                "pnpm-workspace.yaml declares workspace packages: every member's package.json is needed"
            )
        else:
            plan.add_file(workspace)
    pnpmfile = _join(folder, ".pnpmfile.cjs")
    if site.exists(pnpmfile):
        plan.add_file(pnpmfile)
        plan.unsafe.append(".pnpmfile.cjs runs code during the install; assumes it reads no other file")
    if data is not None:
        patched = data.get("pnpm", {}).get("patchedDependencies", {}) if isinstance(data.get("pnpm"), dict) else {}
        for patch in patched.values() if isinstance(patched, dict) else ():
            site.require(plan, _join(folder, str(patch)), "a patch named in pnpm.patchedDependencies")
        scripts = _node_common(site, plan, data, "pnpm")
        if scripts and not _has(options, "--ignore-scripts"):
            _lifecycle_split(site, plan, scripts, "--ignore-scripts", "pnpm", False)
    return plan


# -- Go, Rust, Java, .NET, Ruby, PHP ---------------------------------------------------------------

_GO_SOURCE_STEPS = ("build", "install", "test", "vet")


def _go(site: _Site) -> _Plan | None:
    inv = site.inv
    words = site.words_after(inv.subcommand_index)
    options, operands, _ = _scan(words, frozenset({"-o", "-C", "-modfile", "-mod", "-ldflags", "-gcflags", "-tags"}))
    if inv.subcommand == "mod":
        if not operands or operands[0].value != "download":
            return None
        deps_only = True
    elif inv.subcommand in _GO_SOURCE_STEPS:
        if inv.subcommand == "install" and any("@" in (w.value or "") for w in operands):
            return None
        if any(o.name in ("-mod", "-modfile") for o in options) or "-mod=vendor" in site.env.get("GOFLAGS", ""):
            return None
        deps_only = False
    else:
        return None
    plan = site.plan("go")
    if any(o.name == "-C" for o in options):
        plan.blockers.append("the command changes folder with -C")
        return plan
    if not deps_only:
        plan.deps_text = site.through_program() + " mod download"
        plan.keep_after = True
        if site.view is None:
            return None  # without the context a `go build` may not even use modules
    if site.view is None:
        return plan
    gomod = _join(site.cwd, "go.mod")
    if not deps_only and not site.view.file(gomod):
        return None
    if site.exists(_join(site.cwd, "vendor/modules.txt")):
        return None  # vendored: nothing to download
    if not site.require(plan, gomod):
        return plan
    gosum = _join(site.cwd, "go.sum")
    site.optional(plan, gosum)
    if site.exists(_join(site.cwd, "go.work")):
        plan.blockers.append("go.work declares a workspace: every module's go.mod is needed")
    text = site.read(gomod) or ""
    local = re.findall(r"=>\s*(\.{1,2}/\S*|/\S+)", text)
    if local:
        plan.blockers.append(f"go.mod replaces a module with the local folder {local[0]}, which needs the source")
    if re.search(r"^\s*require\b", text, re.MULTILINE) and gosum not in plan.files:
        plan.unsafe.append(
            "there is no go.sum: `go mod download` may write one that the original build would not have had"
        )
    return plan


def _cargo(site: _Site) -> _Plan | None:
    inv = site.inv
    options, _, _ = _scan(
        site.words_after(inv.subcommand_index),
        frozenset({"--manifest-path", "--target", "--features", "-F", "-p", "--package", "--bin", "--path", "-j"}),
    )
    if inv.subcommand == "install":
        path = _values(options, "--path")
        if not path or path[0] not in (".", "./"):
            return None
    elif inv.subcommand not in ("fetch", "build", "b", "test", "t"):
        return None
    plan = site.plan("cargo")
    if _has(options, "--manifest-path"):
        plan.blockers.append("the command names another manifest (--manifest-path)")
        return plan
    carried = " ".join(o.words[0].text for o in options if o.name in ("--locked", "--frozen", "--offline"))
    fetch = site.through_program() + " fetch" + (f" {carried}" if carried else "")
    plan.deps_text = f"mkdir -p src && echo 'fn main() {{}}' > src/main.rs && {fetch} && rm -rf src"
    plan.keep_after = True
    if site.view is None:
        return plan if inv.subcommand == "fetch" else None
    manifest = _join(site.cwd, "Cargo.toml")
    if inv.subcommand != "fetch" and not site.view.file(manifest):
        return None
    if site.require(plan, manifest):
        site.optional(
            plan,
            _join(site.cwd, "Cargo.lock"),
            _join(site.cwd, "rust-toolchain"),
            _join(site.cwd, "rust-toolchain.toml"),
        )
        site.optional_dir(plan, _join(site.cwd, ".cargo"))
        data = _toml(site, manifest, plan) or {}
        if "workspace" in data:
            plan.blockers.append("Cargo.toml declares a workspace: every member's manifest is needed")
        tables = [data.get(k) for k in ("dependencies", "dev-dependencies", "build-dependencies")]
        tables += [t.get(k) for t in data.get("target", {}).values() if isinstance(t, dict) for k in ("dependencies",)]
        local = [n for t in tables for n in _local_sources(t)]
        if local:
            plan.blockers.append(f"Cargo.toml takes {', '.join(local)} from a local path")
    plan.unsafe.append(
        "cargo cannot read a manifest without its targets: the early `cargo fetch` runs with a throwaway "
        "src/main.rs (removed afterwards), assuming the package keeps its sources in src/ and src/ is empty before "
        "the copy"
    )
    plan.outputs.append((_join(site.cwd, "target"), True))
    return plan


_MVN_VALUES = frozenset(
    {"-f", "--file", "-s", "--settings", "-gs", "--global-settings", "-t", "--toolchains", "-P",
     "--activate-profiles", "-pl", "--projects", "-rf", "--resume-from", "-T", "--threads", "-l", "--log-file",
     "-D", "--define", "-b", "--builder", "-gt", "--global-toolchains"}
)  # fmt: skip
_MVN_PHASES = frozenset(
    {"validate", "initialize", "generate-sources", "process-sources", "generate-resources", "process-resources",
     "compile", "process-classes", "generate-test-sources", "test-compile", "test", "prepare-package", "package",
     "pre-integration-test", "integration-test", "post-integration-test", "verify", "install", "deploy"}
)  # fmt: skip


def _maven(site: _Site) -> _Plan | None:
    words = site.words_after(site.inv.program_index)
    options, goals, _ = _scan(words, _MVN_VALUES)
    names = [g.value or "" for g in goals]
    if not names:
        return None
    deps_only = all(n.startswith("dependency:") or n.endswith(":go-offline") for n in names)
    if not deps_only and not any(n in _MVN_PHASES or ":" in n for n in names):
        return None
    plan = site.plan("maven")
    if _has(options, "-f", "--file", "-pl", "--projects", "-rf", "--resume-from", "-am", "-amd"):
        plan.blockers.append("the build selects other POMs or reactor modules (-f/-pl/-am/-rf)")
        return plan
    if not deps_only:
        kept = " ".join(w.text for o in options for w in o.words)
        plan.deps_text = site.through_program() + (f" {kept}" if kept else "") + " dependency:go-offline"
        plan.keep_after = True
    if site.view is None:
        return plan if deps_only else None
    pom = _join(site.cwd, "pom.xml")
    if not deps_only and not site.view.file(pom):
        return None
    if site.require(plan, pom):
        text = site.read(pom) or ""
        if re.search(r"<modules>\s*<module>", text):
            plan.blockers.append("pom.xml is a multi-module build: every module's pom.xml is needed")
        if "<systemPath>" in text:
            plan.blockers.append("pom.xml has a system-scoped dependency read from a local path")
        parent = re.search(r"<parent>(.*?)</parent>", text, re.DOTALL)
        if parent and not re.search(r"<relativePath\s*/>|<relativePath>\s*</relativePath>", parent.group(1)):
            relative = re.search(r"<relativePath>\s*([^<]*?)\s*</relativePath>", parent.group(1))
            parent_path = _join(site.cwd, relative.group(1) if relative else "../pom.xml")
            if not parent_path.endswith(".xml"):
                parent_path = _join(parent_path, "pom.xml")
            if site.view.context.on_disk(site.view.context_path(parent_path) or "\0"):
                plan.blockers.append(f"pom.xml inherits from the parent POM {_show(parent_path)} in the source tree")
    site.optional_dir(plan, _join(site.cwd, ".mvn"))
    program = site.inv.program_word.value or ""
    if program.startswith("mvnw") or ("/" in program and not program.startswith("/")):
        site.require(plan, _join(site.cwd, program), "the Maven wrapper")
    for value in _values(options, "-s", "--settings", "-gs", "--global-settings", "-t", "--toolchains"):
        if value and not value.startswith("/"):
            site.require(plan, _join(site.cwd, value), "a settings file the build reads")
    plan.unsafe.append(
        "assumes `mvn dependency:go-offline` resolves this POM's dependencies and plugins the way the build does "
        "(it can fetch more, or fail on plugins the build never runs)"
    )
    plan.outputs.append((_join(site.cwd, "target"), True))
    return plan


_DOTNET_VALUES = frozenset(
    {"-c", "--configuration", "-o", "--output", "-r", "--runtime", "-f", "--framework", "-s", "--source",
     "--configfile", "-v", "--verbosity", "-a", "--arch", "--os", "--packages", "--version-suffix"}
)  # fmt: skip
_DOTNET_EXTRA = ("Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "NuGet.config",
                 "nuget.config", "NuGet.Config", "global.json")  # fmt: skip


def _dotnet(site: _Site) -> _Plan | None:
    inv = site.inv
    words = site.words_after(inv.program_index)
    index = next((i for i, w in enumerate(words) if not (w.value or "-").startswith("-")), None)
    subcommand = words[index].value if index is not None else None
    if index is None or subcommand not in ("restore", "build", "publish", "test", "pack"):
        return None
    options, operands, _ = _scan(words[index + 1 :], _DOTNET_VALUES)
    deps_only = subcommand == "restore"
    plan = site.plan("dotnet")
    if not deps_only:
        parts = [site.through_program(), "restore"]
        parts += [w.text for w in operands[:1]]
        parts += [
            w.text for o in options if o.name in ("-r", "--runtime", "-s", "--source", "--configfile") for w in o.words
        ]
        plan.deps_text = " ".join(parts)
        plan.keep_after = True
    if site.view is None:
        return plan if deps_only else None
    target = operands[0].value if operands else None
    if target is None and operands:
        plan.blockers.append("the project is named by a variable")
        return plan
    project: str | None = None
    if target and re.search(r"\.(cs|fs|vb)proj$", target):
        project = _join(site.cwd, target)
    else:
        folder = _join(site.cwd, target or ".")
        names = site.view.listdir(folder)
        if any(n.endswith(".sln") or n.endswith(".slnx") for n in names) or (target or "").endswith(".sln"):
            plan.blockers.append("the build uses a solution: every project's file and folder are needed")
            return plan
        projects = [n for n in names if re.search(r"\.(cs|fs|vb)proj$", n)]
        if len(projects) != 1:
            if deps_only or projects:
                plan.blockers.append(f"{_show(folder)} holds {len(projects)} project files; dopt copies exactly one")
                return plan
            return None
        project = _join(folder, projects[0])
    if not site.require(plan, project):
        return plan
    text = site.read(project) or ""
    if "<ProjectReference" in text or "<Import " in text:
        plan.blockers.append(f"{_show(project)} references other projects or imports files from the source tree")
    folder = posixpath.dirname(project)
    current = folder
    while True:
        site.optional(plan, *(_join(current, name) for name in _DOTNET_EXTRA))
        if not site.view.context_path(current) or current == site.view.copy.dest or current in ("/", _BASE):
            break
        current = posixpath.dirname(current)
    for generated in ("obj", "bin"):
        plan.outputs.append((_join(folder, generated), True))
    return plan


_GEMFILE_DSL = re.compile(
    r"^\s*(#|$|source\b|gem\b|group\b|end\b|ruby\b|platforms?\b|git_source\b|git\b|github\b|plugin\b|"
    r"install_if\b|env\b|[\]\)}]|['\":a-z_]+.*,\s*$|require:|['\"][^'\"]*['\"],?\s*$)"
)


def _bundler(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.subcommand not in (None, "install"):
        return None
    index = inv.subcommand_index if inv.subcommand else inv.program_index
    options, operands, _ = _scan(
        site.words_after(index),
        frozenset({"--gemfile", "--path", "-j", "--jobs", "--retry", "--without", "--with", "--binstubs"}),
    )
    if operands:
        return None
    plan = site.plan("bundler")
    if _has(options, "--gemfile"):
        plan.blockers.append("the install names another Gemfile (--gemfile)")
        return plan
    for value in _values(options, "--path"):
        if value and not value.startswith("/"):
            plan.outputs.append((_join(site.cwd, value), True))
    if _has(options, "--deployment"):
        plan.outputs.append((_join(site.cwd, "vendor/bundle"), True))
    if site.view is None:
        return plan
    gemfile = _join(site.cwd, "Gemfile")
    lock = _join(site.cwd, "Gemfile.lock")
    if not site.view.file(gemfile) and site.view.file(_join(site.cwd, "gems.rb")):
        gemfile, lock = _join(site.cwd, "gems.rb"), _join(site.cwd, "gems.locked")
    if not site.require(plan, gemfile):
        return plan
    site.optional(plan, lock, _join(site.cwd, ".bundle/config"))
    plan.outputs.append((_join(site.cwd, ".bundle/config"), False))
    text = site.read(gemfile) or ""
    unknown = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if re.match(r"gemspec\b", stripped):
            plan.blockers.append(f"Gemfile line {number} uses `gemspec`, which reads the gem's sources")
        elif re.search(r"\bpath:|:path\s*=>|^\s*path\b", stripped):
            plan.blockers.append(f"Gemfile line {number} installs a gem from a local path")
        elif re.search(r"\b(eval_gemfile|require_relative|load|instance_eval)\b", stripped):
            plan.blockers.append(f"Gemfile line {number} loads another Ruby file")
        else:
            named = re.search(r"\bfile:\s*['\"]([^'\"]+)['\"]|File\.read\(\s*['\"]([^'\"]+)['\"]\s*\)", stripped)
            if named:
                site.require(plan, _join(site.cwd, named.group(1) or named.group(2)), f"read by Gemfile line {number}")
                rest = stripped.replace(named.group(0), "")
                if re.search(r"\b(File|Dir|IO)\.", rest):
                    plan.blockers.append(f"Gemfile line {number} reads files from the source tree")
            elif re.search(r"\b(File|Dir|IO)\.|`|%x", stripped):
                plan.blockers.append(f"Gemfile line {number} reads files or runs commands")
            elif not _GEMFILE_DSL.match(line):
                unknown.append(number)
    if unknown:
        lines = ", ".join(str(n) for n in unknown[:5])
        plan.unsafe.append(f"the Gemfile runs Ruby dopt does not check (line {lines}); assumes it reads no other file")
    return plan


def _composer(site: _Site) -> _Plan | None:
    inv = site.inv
    if inv.subcommand != "install":
        return None
    options, operands, _ = _scan(site.words_after(inv.subcommand_index), frozenset({"-d", "--working-dir"}))
    if operands:
        return None
    plan = site.plan("composer")
    if _has(options, "-d", "--working-dir"):
        plan.blockers.append("the install names another folder (--working-dir)")
        return plan
    extra = "".join(f" {flag}" for flag in ("--no-scripts", "--no-autoloader") if not _has(options, flag))
    plan.deps_text = site.after_subcommand(extra)
    plan.keep_after = True
    if site.view is None:
        return plan
    manifest = _join(site.cwd, "composer.json")
    vendor = "vendor"
    if site.require(plan, manifest):
        site.optional(plan, _join(site.cwd, "composer.lock"), _join(site.cwd, "auth.json"))
        try:
            data = json.loads(site.read(manifest) or "")
        except ValueError as err:
            plan.blockers.append(f"composer.json is not valid JSON ({err})")
            data = {}
        data = data if isinstance(data, dict) else {}
        repositories = data.get("repositories", [])
        if isinstance(repositories, dict):
            repositories = list(repositories.values())
        if any(isinstance(r, dict) and r.get("type") in ("path", "artifact") for r in repositories):
            plan.blockers.append("composer.json uses a path or artifact repository from the source tree")
        if isinstance(data.get("scripts"), dict) and data["scripts"]:
            names = ", ".join(f"`{k}`" for k in list(data["scripts"])[:4])
            plan.unsafe.append(
                f"composer.json has scripts ({names}): the early install skips them (--no-scripts) and the original "
                "`composer install` after the copy runs them once the packages are already installed"
            )
        if isinstance(data.get("extra"), dict) and "installer-paths" in data["extra"]:
            plan.unsafe.append("composer.json installs packages into the project tree (extra.installer-paths)")
        config = data.get("config") if isinstance(data.get("config"), dict) else {}
        vendor = str(config.get("vendor-dir", "vendor"))
    plan.outputs.append((_join(site.cwd, vendor), True))
    return plan


_HANDLERS: dict[str, Callable[[_Site], _Plan | None]] = {
    "pip": _pip,
    "uv": _uv,
    "pipenv": _pipenv,
    "poetry": _poetry,
    "npm": _npm,
    "yarn": _yarn,
    "pnpm": _pnpm,
    "go": _go,
    "cargo": _cargo,
    "mvn": _maven,
    "mvnw": _maven,
    "dotnet": _dotnet,
    "bundle": _bundler,
    "bundler": _bundler,
    "composer": _composer,
}


def _plan_for(
    command: Command, script: ShellScript, cwd: str, view: _View | None, env: Mapping[str, str]
) -> _Plan | None:
    inv = invocation_of(command)
    if inv is None:
        return None
    handler = _HANDLERS.get(inv.program)
    if handler is None:
        return None
    return handler(_Site(script, command, inv, cwd, view, env))


# ----------------------------------------------------------------------------------------------
# Commands that do not touch the copied files
# ----------------------------------------------------------------------------------------------

_OS_PACKAGES = frozenset({"apt-get", "apt", "aptitude", "apk", "dnf", "yum", "microdnf", "tdnf", "zypper"})
_ABSOLUTE_ONLY = frozenset({"rm", "mkdir", "chmod", "chown", "chgrp", "ln", "touch", "rmdir"})
_HARMLESS = frozenset(
    {"echo", "true", ":", "printf", "useradd", "groupadd", "adduser", "addgroup", "usermod", "groupmod",
     "update-ca-certificates", "ldconfig", "locale-gen", "update-locale", "sleep", "id", "whoami", "uname", "nproc",
     "date", "which", "corepack", "update-alternatives", "dpkg-reconfigure", "test", "["}
)  # fmt: skip
_STATEFUL = frozenset({"set", "export", "umask", "ulimit", "shopt", "trap"})


def _relative_path_word(word: Word) -> bool:
    """A word that looks like a relative file path (``./x``, ``src/y``, ``a.txt``)."""
    text = word.text
    if not text or text.startswith(("-", "/", "$", "http://", "https://")) or "://" in text:
        return False
    return text.startswith(".") or "/" in text


def _redirects_ok(command: Command) -> bool:
    for redirect in command.redirects:
        if redirect.heredoc is not None:
            continue
        target = redirect.target
        if target is None:
            continue
        text = target.text
        if not (text.startswith("/") or text.isdigit() or text == "-"):
            return False
    return True


def _neutral(command: Command, protected: str) -> bool:
    """Whether ``command`` neither reads nor writes files under ``protected`` (the copy's destination)."""
    if not _redirects_ok(command):
        return False
    if not command.words:
        return True  # an assignment
    inv = invocation_of(command)
    if inv is None:
        return False
    program = inv.program
    args = command.words[inv.program_index + 1 :]
    if program in _STATEFUL or program in _HARMLESS:
        return not any(_relative_path_word(w) for w in args)
    if program in _OS_PACKAGES:
        return all(w.value is not None and "/" not in w.value and not w.value.startswith(".") for w in inv.operands)
    if program in _ABSOLUTE_ONLY:
        paths = [w for w in args if not w.text.startswith("-")]
        return all(
            w.text.startswith("/")
            and "$" not in w.text
            and "`" not in w.text
            and not _overlap(_glob_root(w.text), protected)
            for w in paths
        )
    if program == "pip":
        if inv.subcommand in ("uninstall", "config", "cache", "--version", "list", "freeze"):
            return True
        if inv.subcommand != "install":
            return False
        options, operands, dynamic = _scan(command.words[(inv.subcommand_index or 0) + 1 :], _PIP_VALUES)
        if dynamic or any(o.name in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable") for o in options):
            return False
        if any(
            o.value
            and not o.value.startswith("/")
            and o.name in ("-f", "--find-links", "-t", "--target", "--prefix")
            and not is_url(o.value)
            for o in options
        ):
            return False
        return not any(is_local_requirement(w.value or "./") for w in operands)
    if program in ("npm", "pnpm"):
        sub = inv.subcommand
        if sub in ("cache", "config", "set"):
            return True
        options, operands, _ = _scan(command.words[(inv.subcommand_index or 0) + 1 :], _NPM_VALUES)
        return (
            sub in ("install", "i", "add")
            and _has(options, "-g", "--global")
            and not any(_relative_path_word(w) for w in operands)
        )
    if program == "yarn":
        return inv.subcommand in ("global", "cache", "config", "set")
    if program in ("gem",):
        return inv.subcommand in ("install", "update") and not any(_relative_path_word(w) for w in inv.operands)
    if program in ("bundle", "bundler"):
        return inv.subcommand == "config"
    if program == "go":
        return inv.subcommand == "env" or (
            inv.subcommand == "install" and all("@" in (w.value or "") for w in inv.operands) and bool(inv.operands)
        )
    if program in ("curl", "wget"):
        return _download_ok(program, args)
    if program in ("sh", "bash", "dash") or program.startswith("python"):
        values = [w.value for w in args]
        if None in values:
            return False
        if program.startswith("python") and len(values) >= 3 and values[0] == "-m" and values[1] == "venv":
            return all(v.startswith("-") or v.startswith("/") for v in values[2:])
        reads_stdin = not values or values[0] in ("-", "-s")
        return command.context.in_pipeline and command.context.pipeline_index > 0 and reads_stdin
    return False


def _glob_root(text: str) -> str:
    """The fixed folder a glob like ``/var/lib/apt/lists/*`` starts from."""
    parts = []
    for part in text.split("/"):
        if any(ch in part for ch in "*?[{"):
            break
        parts.append(part)
    return go_clean("/".join(parts) or "/")


def _download_ok(program: str, args: Sequence[Word]) -> bool:
    values = [w.value for w in args]
    if program == "curl":
        for i, value in enumerate(values):
            if value is None:
                continue
            if value in ("-O", "--remote-name", "--remote-name-all", "-J") or (
                value.startswith("-") and not value.startswith("--") and "O" in value
            ):
                return False
            if value in ("-o", "--output") and i + 1 < len(values):
                target = values[i + 1]
                if target is None or not (target.startswith("/") or target == "-"):
                    return False
        return True
    output = None
    for i, value in enumerate(values):
        if value is None:
            continue
        short = value.startswith("-") and not value.startswith("--")
        takes_next = value in ("-O", "--output-document", "-P", "--directory-prefix") or (short and value.endswith("O"))
        if takes_next and i + 1 < len(values):
            output = values[i + 1]
        elif short and "O" in value:
            output = value.split("O", 1)[1]
        elif value.startswith("--output-document="):
            output = value.split("=", 1)[1]
    return output is not None and (output == "-" or output.startswith("/"))


# ----------------------------------------------------------------------------------------------
# Reading a RUN: which commands install, which are neutral, what can move
# ----------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """A RUN that installs dependencies from files under the copy's destination."""

    ins: Instruction
    script: ShellScript
    plans: list[_Plan]
    item_kinds: list[str]  # per top-level item: deps, split, neutral, state, source
    blockers: list[str] = field(default_factory=list)


def _shell_of(ins: Instruction) -> ShellScript | None:
    if ins.name != "RUN" or ins.json or ins.heredocs or ins.shell_script is None:
        return None
    if any(f.name == "mount" and "type=bind" in (f.value or "") and "from=" not in (f.value or "") for f in ins.flags):
        return None
    script = parse_shell(ins.args)
    return None if script.problems else script


def _read_run(ctx: Context, ins: Instruction, copy: _Copy, view: _View | None) -> _Run | None:
    """The RUN's installs that read manifests under ``copy.dest``; None when it has none."""
    script = _shell_of(ins)
    if script is None:
        return None
    cwd = _workdir(ctx, ins)
    if cwd is None:
        return None
    env = ctx.model.scope_of(ins).variables()
    plans: list[_Plan] = []
    by_command: dict[int, _Plan] = {}
    for command in script.commands():
        plan = _plan_for(command, script, cwd, view, env)
        if plan is None or not _under(plan.manifest_dir, copy.dest):
            continue
        plans.append(plan)
        by_command[command.start] = plan
    if not plans:
        return None
    if not all(p.source_only for p in plans):
        # `pip install -e .` beside `pip install -r requirements.txt`: only a step that needs the source.
        by_command = {start: plan for start, plan in by_command.items() if not plan.source_only}
        plans = [p for p in plans if not p.source_only]
    kinds = []
    for item in script.items:
        planned = [by_command.get(c.start) for c in item.commands]
        if item.kind == "command" and planned and planned[0] is not None:
            kinds.append("split" if planned[0].keep_after else "deps")
        elif any(planned):
            kinds.append("nested")
        elif all(_neutral(c, copy.dest) for c in item.commands):
            stateful = any((c.words and c.words[0].value in _STATEFUL) or not c.words for c in item.commands)
            kinds.append("state" if stateful or item.kind != "command" else "neutral")
        else:
            kinds.append("source")
    run = _Run(ins, script, plans, kinds)
    if any(c.words and c.words[0].value in ("cd", "pushd", "popd") for c in script.commands()):
        run.blockers.append("the RUN changes folder with `cd`, so dopt cannot tell where the install runs")
    if "nested" in kinds:
        run.blockers.append("the install sits inside a compound command (if, loop, subshell or pipeline)")
    return run


def _handled_before(ctx: Context, stage_instructions: Sequence[Instruction], copy: _Copy, plan: _Plan) -> bool:
    """Whether an earlier step of the stage already installs this ecosystem's dependencies there."""
    for ins in stage_instructions:
        if ins.start >= copy.ins.start:
            break
        script = _shell_of(ins)
        cwd = _workdir(ctx, ins) if script is not None else None
        if script is None or cwd is None:
            continue
        env = ctx.model.scope_of(ins).variables()
        for command in script.commands():
            earlier = _plan_for(command, script, cwd, None, env)
            if (
                earlier is not None
                and earlier.ecosystem == plan.ecosystem
                and earlier.manifest_dir == plan.manifest_dir
            ):
                return True
    return False


# ----------------------------------------------------------------------------------------------
# The rule
# ----------------------------------------------------------------------------------------------


@dataclass
class _Between:
    """What stands between the broad copy and the install, and what moving the copy past it means."""

    blockers: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)


def _shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Instructions that change nothing a RUN sees: a step may move across them.
_METADATA = frozenset({"LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "CMD", "ENTRYPOINT", "MAINTAINER", "ONBUILD"})

_SOURCE_READERS = frozenset(
    {"make", "npm", "npx", "yarn", "pnpm", "node", "go", "cargo", "mvn", "gradle", "dotnet", "bundle", "composer",
     "php", "ruby", "rake", "pip", "poetry", "uv", "pipenv", "tox", "pytest"}
)  # fmt: skip


def _check_between(
    ctx: Context, copy: _Copy, ins: Instruction, view: _View | None, run_workdir: str | None
) -> _Between:
    result = _Between()
    where = f"line {ins.line}"
    kind = ins.name
    if kind in ("ENV", "ARG", "LABEL", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "CMD", "ENTRYPOINT", "SHELL", "USER",
                "MAINTAINER", "ONBUILD"):  # fmt: skip
        return result
    if kind == "WORKDIR":
        after = _workdir_after(ctx, ins)
        if after is None:
            result.blockers.append(f"the WORKDIR on {where} cannot be resolved")
        elif _overlap(after, copy.dest):
            result.unsafe.append(
                f"the WORKDIR on {where} now creates {_show(after)} before the copy fills it; assumes the folder's "
                "owner and mode do not matter"
            )
        return result
    if kind == "VOLUME":
        result.blockers.append(f"the VOLUME on {where} lies between the copy and the install")
        return result
    if kind in ("COPY", "ADD"):
        if len(ins.values) < 2 or ins.heredocs:
            result.blockers.append(f"the {kind} on {where} cannot be analysed")
            return result
        dest = expand(ins.values[-1], ctx.model.scope_of(ins).variables(), ctx.document.escape)
        workdir = _workdir(ctx, ins)
        if dest is None or (not dest.startswith("/") and workdir is None):
            result.blockers.append(f"the {kind} on {where} has a destination dopt cannot resolve")
            return result
        target = _join(workdir or _BASE, dest)
        if _overlap(target, copy.dest):
            result.blockers.append(f"the {kind} on {where} also writes into {_show(copy.dest)}")
        return result
    if kind == "RUN":
        script = _shell_of(ins)
        if script is None:
            result.blockers.append(f"the RUN on {where} cannot be analysed (exec form, heredoc or unclear shell)")
            return result
        commands = script.commands()
        if all(_neutral(c, copy.dest) for c in commands) and not any(
            c.words and c.words[0].value in ("cd", "pushd") for c in commands
        ):
            return result
        cwd = run_workdir
        for command in commands:
            inv = invocation_of(command)
            program = (inv.program if inv else "") or ""
            if cwd is not None and _under(cwd, copy.dest) and program in _SOURCE_READERS:
                result.blockers.append(f"the RUN on {where} (`{_shorten(ins.args)}`) may read the copied files")
                return result
            for word in command.words:
                value = word.value
                if not value or value.startswith("-"):
                    continue
                path = _join(cwd, value) if cwd is not None else value
                if (
                    (value.startswith("/") and _under(go_clean(value), copy.dest))
                    or (view is not None and not value.startswith("/") and cwd is not None and view.exists(path))
                    or value.startswith("./")
                ):
                    result.blockers.append(f"the RUN on {where} (`{_shorten(ins.args)}`) uses {value} from the copy")
                    return result
        result.unsafe.append(
            f"assumes the RUN on {where} (`{_shorten(ins.args)}`) neither reads nor writes the copied files, "
            "since it now runs before the copy"
        )
        return result
    result.blockers.append(f"the {ins.keyword} on {where} lies between the copy and the install")
    return result


def _workdir_after(ctx: Context, ins: Instruction) -> str | None:
    """The WORKDIR a WORKDIR instruction sets."""
    before = ctx.model.scope_of(ins)
    value = expand(ins.values[0], before.variables(), ctx.document.escape) if ins.values else None
    if value is None:
        return None
    if value.startswith("/"):
        return go_clean(value)
    base = _workdir(ctx, ins)
    return None if base is None else _join(base, value)


class InstallBeforeCopy(Rule):
    code = "DO300"
    name = "install-before-copy"
    summary = "Dependencies installed after copying the whole source: every code change re-installs them"
    fix_safety = FixSafety.SAFE
    fix_scope = FixScope.DOCUMENT  # moves the install, and the files it needs, ahead of the COPY

    def check(self, ctx: Context) -> Iterator[Finding]:
        context, no_context = open_context(ctx)
        for stage in ctx.model.stages:
            instructions = list(stage.instructions)
            for index, ins in enumerate(instructions):
                copy = _broad_copy(ctx, ins, context)
                if copy is None:
                    continue
                finding = self._check_copy(ctx, stage, instructions, index, copy, context, no_context)
                if finding is not None:
                    yield finding

    # -- one broad copy ---------------------------------------------------------------------------

    def _check_copy(
        self,
        ctx: Context,
        stage: Stage,
        instructions: list[Instruction],
        index: int,
        copy: _Copy,
        context: BuildContext | None,
        no_context: str,
    ) -> Finding | None:
        view = _View(context, copy) if context is not None and copy.from_stage is None else None
        between: list[Instruction] = []
        run: _Run | None = None
        for ins in instructions[index + 1 :]:
            if ins.name in ("COPY", "ADD") and _broad_copy(ctx, ins, context) is not None:
                other = _broad_copy(ctx, ins, context)
                if other is not None and _overlap(other.dest, copy.dest):
                    return None
            run = _read_run(ctx, ins, copy, view)
            if run is not None:
                break
            between.append(ins)
        if run is None:
            return None
        run.plans = [p for p in run.plans if not _handled_before(ctx, _stage_chain(stage), copy, p)]
        if not run.plans:
            return None
        if copy.from_stage is not None:
            return self._report(ctx, copy, run, [f"the copy comes from `--from={copy.from_stage}`, whose files dopt "
                                                 "cannot read"], [])  # fmt: skip
        if view is None:
            return self._report(ctx, copy, run, [f"{no_context}, so dopt cannot tell which manifest files exist "
                                                 "(pass --context DIR)"], [])  # fmt: skip
        if run.blockers:  # the installs' own reading is unreliable (a `cd`, a nested install)
            return self._report(ctx, copy, run, run.blockers, [])
        blockers: list[str] = []
        unsafe: list[str] = []
        for plan in run.plans:
            blockers += plan.blockers
            unsafe += plan.unsafe
            for path, blocks in plan.outputs:
                context_path = view.context_path(path)
                if context_path is None or not view.exists(path):
                    continue
                sentence = (
                    f"the build context has {context_path}, which the copy would now put over what the install "
                    "writes there (add it to .dockerignore)"
                    if blocks
                    else f"assumes the context's {context_path} may replace the one the install writes"
                )
                (blockers if blocks else unsafe).append(sentence)
        if any(p.source_only for p in run.plans):
            return self._report(ctx, copy, run, blockers, unsafe)
        run_workdir = _workdir(ctx, run.ins)
        for ins in between:
            check = _check_between(ctx, copy, ins, view, _workdir(ctx, ins))
            blockers += check.blockers
            unsafe += check.unsafe
        if context is not None and context.ignore_error:
            blockers.append(f"the ignore file cannot be read ({context.ignore_error})")
        if run_workdir is None:
            blockers.append("the WORKDIR of the install cannot be resolved")
        if blockers:
            return self._report(ctx, copy, run, blockers, unsafe)
        assert run_workdir is not None
        return self._fix(ctx, copy, run, between, run_workdir, unsafe)

    def _describe(self, copy: _Copy, run: _Run) -> str:
        commands = ", ".join(f"`{_shorten(run.script.text[p.command.start : p.command.end], 50)}`" for p in run.plans)
        return (
            f"`{_shorten(copy.ins.logical.strip(), 40)}` (line {copy.ins.line}) copies the source before the "
            f"dependency install {commands} (line {run.ins.line}), so every code change re-runs the install"
        )

    def _report(self, ctx: Context, copy: _Copy, run: _Run, blockers: list[str], unsafe: list[str]) -> Finding:
        unique = list(dict.fromkeys(blockers))
        message = f"{self._describe(copy, run)}; not fixed: {'; '.join(unique)}"
        return self.at_instruction(ctx, run.ins, message)

    # -- the rewrite ------------------------------------------------------------------------------

    def _fix(
        self, ctx: Context, copy: _Copy, run: _Run, between: list[Instruction], workdir: str, unsafe: list[str]
    ) -> Finding:
        """The rewrite, in at most two steps, each touching only the instructions its finding covers.

        When instructions that matter for the install (RUN, ENV, WORKDIR ...) stand between the copy
        and the install, the first step only moves the copy down to the install; the next round then
        sees the copy right above the install and makes the second step: the manifest copy and the
        install (or its deps-only part) go in front of the broad copy. Comment and blank lines stay
        where they are.
        """
        doc = ctx.document
        source = doc.source
        nl = doc.newline_at(run.ins.start)
        view_dirs: list[str] = []
        view_files: list[str] = []
        for plan in run.plans:
            view_dirs += [d for d in plan.dirs if d not in view_dirs]
        for plan in run.plans:
            view_files += [f for f in plan.files if f not in view_files and not any(_under(f, d) for d in view_dirs)]
        copy_lines, problem = self._manifest_copies(ctx, copy, workdir, view_files, view_dirs)
        blockers = [problem] if problem else []
        movable = [ins for ins in between if ins.name not in _METADATA]
        moved = ""
        if movable:
            moved, problem = self._moved_copy_text(ctx, copy, run.ins, workdir)
            if problem:
                blockers.append(problem)
        whole = all(k in ("deps", "neutral", "state") for k in run.item_kinds)
        deps_line = deps_commands = ""
        removals: list[tuple[int, int]] = []
        if not whole:
            deps_line, deps_commands, removals, problem = self._split(ctx, run)
            if problem:
                blockers.append(problem)
        if blockers:
            return self._report(ctx, copy, run, blockers, unsafe)
        names = ", ".join(_source_of(copy, f) for f in view_files + view_dirs) or "nothing"
        what = (
            f"copy {names} first and install, then copy the rest"
            if whole
            else f"copy {names} first, install the dependencies alone (`{_shorten(deps_commands, 60)}`), "
            "then copy the source and run the original step"
        )
        safety = FixSafety.UNSAFE if unsafe else FixSafety.SAFE
        notes = f" (unsafe: {'; '.join(dict.fromkeys(unsafe))})" if unsafe else ""
        if movable:
            lines = sorted({ins.line for ins in movable})
            shown = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}-{lines[-1]}"
            step = f"move `{_shorten(copy.ins.logical.strip(), 40)}` down to the install, past {shown}; then {what}"
            message = f"{self._describe(copy, run)}; {step}{notes}"
            removed_end = copy.ins.end
            if self._blank_after(ctx, copy.ins):
                moved += nl
                before, blank = self._neighbour(ctx, copy.ins, -1), self._neighbour(ctx, copy.ins, 1)
                if isinstance(before, Trivia) and before.kind == "blank" and blank is not None:
                    removed_end = blank.end  # blank lines on both sides: one goes with the copy, not two stay
            edits = [Edit(copy.ins.start, removed_end, ""), Edit(run.ins.start, run.ins.start, moved)]
            fix = self.make_fix(f"move `{_shorten(copy.ins.logical.strip(), 40)}` past {shown}", *edits, safety=safety)
            return self.at_instruction(ctx, copy.ins, message, fix)
        block = "".join(line + nl for line in copy_lines)
        message = f"{self._describe(copy, run)}; {what}{notes}"
        at = self._leading_comments(ctx, copy.ins)
        if whole and at == copy.ins.start:
            # Swap the two instructions: the manifest copy and the install take the broad copy's place,
            # the broad copy takes the install's.
            install = source[run.ins.start : run.ins.end]
            broad = source[copy.ins.start : copy.ins.end]
            if not install.endswith("\n"):
                install += nl
                broad = broad.removesuffix("\n").removesuffix("\r")
            edits = [Edit(copy.ins.start, copy.ins.end, block + install), Edit(run.ins.start, run.ins.end, broad)]
            fix = self.make_fix(what, *edits, safety=safety)
            return self.finding(ctx, copy.ins.keyword_start, self._first_line_end(ctx, run.ins), message, fix)
        # Comments above the broad copy describe it: the new steps go above them.
        separator = nl if self._blank_after(ctx, copy.ins) else ""
        if whole:
            install = source[run.ins.start : run.ins.end]
            install += "" if install.endswith("\n") else nl
            edits = [Edit(at, at, block + install + separator), Edit(run.ins.start, run.ins.end, "")]
        else:
            edits = [Edit(at, at, block + deps_line + nl + separator)]
            edits += [Edit(start, end, "") for start, end in removals]
        fix = self.make_fix(what, *edits, safety=safety)
        return self.at_instruction(ctx, run.ins, message, fix)

    def _first_line_end(self, ctx: Context, ins: Instruction) -> int:
        source = ctx.document.source
        end = source.find("\n", ins.keyword_start)
        end = ins.end if end == -1 else min(end, ins.end)
        return end - 1 if end > ins.keyword_start and source[end - 1] == "\r" else end

    def _manifest_copies(
        self, ctx: Context, copy: _Copy, workdir: str, files: list[str], dirs: list[str]
    ) -> tuple[list[str], str | None]:
        keyword = "copy" if copy.ins.keyword.islower() else "COPY"
        flags = " ".join(ctx.document.source[f.start : f.end] for f in copy.flags)
        prefix = f"{keyword} {flags + ' ' if flags else ''}"
        by_folder: dict[str, list[str]] = {}
        for path in files:
            by_folder.setdefault(posixpath.dirname(path), []).append(path)
        lines = []
        entries: list[tuple[list[str], str]] = []
        for folder, paths in by_folder.items():
            entries.append(([_source_of(copy, p) for p in paths], folder))
        for folder in dirs:
            entries.append(([_source_of(copy, folder)], folder))
        for sources, folder in entries:
            dest = _destination(folder, workdir)
            if dest is None:
                return [], f"{_show(folder)} cannot be written relative to the WORKDIR of the install"
            words = [*sources, dest]
            if any("$" in w or "\0" in w for w in words):
                return [], "a manifest path contains `$`, which COPY would expand"
            if any(re.search(r"[\s\"'\\`]", w) or w.startswith("[") for w in words):
                lines.append(prefix + json.dumps(words))
            else:
                lines.append(prefix + " ".join(words))
        return lines, None

    def _moved_copy_text(self, ctx: Context, copy: _Copy, run: Instruction, workdir: str) -> tuple[str, str | None]:
        """The broad copy's text at its new place (destination made absolute if the WORKDIR changed)."""
        doc = ctx.document
        text = doc.source[copy.ins.start : copy.ins.end]
        if not text.endswith("\n"):
            text += doc.newline_at(copy.ins.start)
        variables_before = ctx.model.scope_of(copy.ins).variables()
        variables_after = ctx.model.scope_of(run).variables()
        raw = copy.ins.logical
        if "$" in raw:
            for part in [*copy.ins.values, *(f.text for f in copy.ins.flags)]:
                if "$" in part and expand(part, variables_before, doc.escape) != expand(
                    part, variables_after, doc.escape
                ):
                    return "", "the copy uses variables whose values change before the install"
        if copy.absolute or workdir == copy.workdir:
            return text, None
        # Moving the copy past a WORKDIR would change what its relative destination means; dopt keeps the
        # copy's text as written, so it asks for an absolute destination instead of rewriting it.
        absolute = _show(copy.dest) if "\0" not in copy.dest else None
        hint = f" (write it as `{absolute}`)" if absolute else ""
        return (
            "",
            f"the copy's destination `{copy.dest_text}` is relative and the WORKDIR changes before the install{hint}",
        )

    def _split(self, ctx: Context, run: _Run) -> tuple[str, str, list[tuple[int, int]], str | None]:
        """The deps-only RUN line and the part of the original RUN that it makes redundant."""
        kinds = run.item_kinds
        items = run.script.items
        last = max((i for i, k in enumerate(kinds) if k in ("deps", "split")), default=-1)
        if last < 0:
            return "", "", [], "the install cannot be separated from the rest of the RUN"
        if any(k == "source" for k in kinds[: last + 1]):
            first = next(i for i, k in enumerate(kinds) if k == "source")
            shown = _shorten(run.script.text[items[first].start : items[first].end], 40)
            return "", "", [], f"`{shown}` runs before the install in the same RUN and may read the source"
        if any(items[i].op_after != "&&" for i in range(last)):
            return "", "", [], "the commands before the install are not joined with &&"
        plans = {p.command.start: p for p in run.plans}
        parts: list[str] = []
        for item in items[: last + 1]:
            plan = plans.get(item.commands[0].start) if item.commands else None
            text = run.script.text[item.start : item.end]
            if plan is not None and plan.deps_text is not None:
                text = plan.deps_text
            if text not in parts:
                parts.append(text)
        keyword = "run" if run.ins.keyword.islower() else "RUN"
        flags = " ".join(ctx.document.source[f.start : f.end] for f in run.ins.flags)
        head = f"{keyword} {flags + ' ' if flags else ''}"
        nl = ctx.document.newline_at(run.ins.start)
        line = head + " && ".join(parts)
        if len(line) > _LINE_LIMIT and len(parts) > 1:
            line = head + f" {ctx.document.escape}{nl}    && ".join(parts)
        # The original RUN no longer needs the commands that ran early and leave only files behind
        # (deps-only installs, neutral commands); shell state (`set -e`, `export`) stays, and so does
        # everything from the first step that still needs the source.
        stop = next((i for i, k in enumerate(kinds) if k in ("split", "source", "nested")), len(kinds))
        removals: list[tuple[int, int]] = []
        ins = run.ins
        for index in range(stop):
            if kinds[index] not in ("deps", "neutral") or items[index].op_after != "&&" or index + 1 >= len(items):
                continue
            start = ins.source_offset(ins.args_start + items[index].start)
            end = ins.source_offset(ins.args_start + items[index + 1].start)
            if removals and removals[-1][1] == start:
                start = removals.pop()[0]
            removals.append((start, end))
        return line, " && ".join(parts), removals, None

    def _blank_after(self, ctx: Context, ins: Instruction) -> bool:
        """Whether a blank line follows ``ins`` (the file separates its steps with blank lines)."""
        following = self._neighbour(ctx, ins, 1)
        return isinstance(following, Trivia) and following.kind == "blank"

    def _neighbour(self, ctx: Context, ins: Instruction, step: int) -> Instruction | Trivia | None:
        """The node just after (step 1) or before (step -1) ``ins``."""
        nodes = ctx.document.nodes
        position = next(i for i, n in enumerate(nodes) if n is ins) + step
        return nodes[position] if 0 <= position < len(nodes) else None

    def _leading_comments(self, ctx: Context, ins: Instruction) -> int:
        """Start of the comment lines directly above ``ins`` (they describe it and move with it)."""
        nodes = ctx.document.nodes
        position = next(i for i, n in enumerate(nodes) if n is ins)
        start = ins.start
        while position > 0:
            node = nodes[position - 1]
            if isinstance(node, Trivia) and node.kind == "comment":
                start = node.start
                position -= 1
            else:
                break
        return start


def _source_of(copy: _Copy, image: str) -> str:
    rel = _relative(image, copy.dest)
    if copy.source == ".":
        return rel
    return copy.source if rel == "." else f"{copy.source}/{rel}"


def _destination(folder: str, workdir: str) -> str | None:
    """How to write ``folder`` as a COPY destination at a place where ``workdir`` is in force."""
    if _under(folder, workdir):
        rel = _relative(folder, workdir)
        return "./" if rel == "." else f"{rel}/"
    if "\0" in folder:
        return None
    return folder.rstrip("/") + "/"
