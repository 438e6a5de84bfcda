"""Machinery of the multi-stage rules (DO601-DO607): templates, the build context, the analysis of a
single-stage Dockerfile, the plan of the two stages and the rewrite.

A conversion keeps every original instruction. The build stage is the original file: its FROM gets
``AS build``, the instructions that only describe the final image (LABEL, EXPOSE, VOLUME, STOPSIGNAL,
HEALTHCHECK, ONBUILD, CMD, ENTRYPOINT, the last USER) move to the runtime stage, and a few lines may
be inserted (a virtualenv, ``CGO_ENABLED=0``, pruning devDependencies). The runtime stage starts
from a smaller image of the same family chosen by a template, repeats ARG/ENV/WORKDIR/SHELL,
installs the runtime system packages, recreates users, and copies from the build stage what the
application needs. Anything the analysis cannot place in the runtime stage becomes a reason not to
convert, reported in the finding, never silently dropped. So does a build whose run-time needs cannot
be known: no CMD or ENTRYPOINT (an environment, not an application), a base image from a build
argument that the runtime image would have to follow, a downloaded script piped into a shell, or
package sources the build added that the runtime stage's installs would need.

Templates are TOML files, one per ecosystem, in ``dopt/templates/`` (and any the user names with
``[tool.dopt.rules] multistage-templates = "path"``, a file or a folder of files). Their keys:

``ecosystem``
    ``go``, ``node``, ``python``, ``java``, ``rust``, ``dotnet``, ``static`` or ``common``.
``toolchain``
    What the runtime stage leaves behind, for messages.
``[[images]]``
    Builder images and their runtime image, first match wins: ``match`` (a regular expression on
    the image reference), ``runtime`` (may use the named groups of ``match`` and ``{image}``),
    ``static-runtime``/``console-runtime`` (variants some ecosystems choose), ``release`` (Debian
    release or ``alpine``: selects runtime package names), ``packages`` (``apt``, ``apk`` or
    ``none``: how the runtime stage installs packages; ``none`` also means it has no shell),
    ``full`` (the builder has compilers, git, curl ... that the runtime lacks) and ``workdir`` (the
    builder image's WORKDIR).
``build-tools``
    Commands only the builder has; an application that runs one at run time is not converted.
``source-files``
    Context files that are only build inputs (compiled ecosystems copy every other file).
``runtime-files``
    Builder files the program may need at run time (the CA bundle).
``[<ecosystem>]``
    Settings of one ecosystem (see each template).

A user file with the ``ecosystem`` of a built-in template extends it: its ``[[images]]`` are tried
first, other lists are extended, tables merged and single values replaced.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from dopt.optimizer.config import ConfigError
from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.semantic import Stage, expand
from dopt.optimizer.shell import Command, Invocation, ShellScript, invocation_of, parse_shell
from dopt.optimizer.syntax import Document, Instruction, Trivia
from dopt.transforms._context import BuildContext, open_context

BUILD_STAGE = "build"
OPTION_TEMPLATES = "multistage-templates"

# Instructions that only describe the final image: they move to the runtime stage.
FINAL_ONLY = frozenset({"EXPOSE", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "CMD", "ENTRYPOINT"})
# Instructions both stages need, in their original order.
BOTH = frozenset({"ARG", "ENV", "WORKDIR", "SHELL"})
# Instructions whose meaning the runtime stage must keep (checked by ``verify``).
KEPT = frozenset({"ENV", "ARG", "WORKDIR", "SHELL", "LABEL", *FINAL_ONLY})

# Directories of the base image: never copied as a whole.
SYSTEM_DIRS = frozenset(
    {
        "/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64",
        "/usr/share", "/usr/include", "/usr/src", "/usr/local", "/usr/local/bin", "/usr/local/sbin",
        "/usr/local/lib", "/usr/local/share", "/usr/local/include", "/usr/local/src", "/etc", "/var", "/var/lib",
        "/var/cache", "/var/log", "/var/tmp", "/var/www", "/opt", "/home", "/root", "/tmp", "/run",
        "/mnt", "/media", "/dev", "/proc", "/sys", "/go", "/go/bin", "/go/src", "/go/pkg", "/usr/local/go",
        "/usr/local/cargo", "/usr/local/cargo/bin", "/usr/local/rustup",
    }
)  # fmt: skip
# Paths a build writes to that the runtime never needs.
SCRATCH_PREFIXES = ("/tmp", "/var/tmp", "/var/cache", "/var/lib/apt", "/dev", "/proc", "/root/.cache", "/root/.npm")
BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})

_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
_USER_TOOLS = frozenset({"useradd", "adduser", "groupadd", "addgroup", "usermod"})
_SYSTEM_INSTALLERS = {
    "make": "install",
    "dpkg": None,
    "rpm": None,
    "gem": "install",
    "cpan": None,
    "cpanm": None,
    "luarocks": "install",
}
_SCRIPT_SUFFIXES = (".sh", ".bash")
# Where package managers find their repositories and keys, and the tools that add them.
_PACKAGE_SOURCES = ("/etc/apt/", "/usr/share/keyrings/", "/etc/apk/", "/etc/yum.repos.d/")
_REPO_TOOLS = frozenset({"apt-key", "add-apt-repository"})
# Programs a build runs as a matter of course (interpreters, installers) even when the container
# runs them too; what they write during the build is what the ecosystem's plan already places.
_BUILD_RUNTIMES = _SHELLS | {"python", "node", "java", "dotnet", "ruby", "php", "perl", "pip", "npm", "npx", "yarn",
                             "pnpm", "uv", "poetry", "pipenv", "bundle", "gem", "env", "exec"}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Templates
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeImage:
    """A builder image matched by a template: the runtime image and the facts that go with it."""

    builder: str
    runtime: str
    values: Mapping[str, Any]
    follows_builder: bool = True  # the runtime image is named after the builder's tag (its version, variant)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def release(self) -> str:
        """The Debian release (or ``alpine``) of the runtime; ``bookworm|trixie`` when the tag names none."""
        return str(self.values.get("release") or "bookworm|trixie")

    def per_release(self, tables: Mapping[str, Any], key: str) -> tuple[list[str] | None, str | None]:
        """``tables[release][key]`` (package names) when every release the image may be agrees on it.

        (names, None); (None, None) when no release knows ``key``; (None, why) when they differ.
        """
        releases = self.release.split("|")
        found = {r: (tables.get(r) or {}).get(key) for r in releases}
        known = {r: [str(p) for p in v] for r, v in found.items() if v is not None}
        if not known:
            return None, None
        if len(known) < len(releases) or len({tuple(v) for v in known.values()}) > 1:
            named = "; ".join(f"{r}: {', '.join(v)}" for r, v in known.items())
            missing = [r for r in releases if r not in known]
            named += f"; {', '.join(missing)}: not known" if missing else ""
            return None, f"its package is named differently in the Debian releases {self.runtime} may be ({named})"
        return next(iter(known.values())), None

    @property
    def packages(self) -> str:
        return str(self.values.get("packages") or "none")

    @property
    def full(self) -> bool:
        return bool(self.values.get("full"))

    @property
    def workdir(self) -> str:
        return str(self.values.get("workdir") or "/")

    def variant(self, key: str) -> str:
        return str(self.values.get(key) or self.runtime)


@dataclass(frozen=True)
class Template:
    ecosystem: str
    data: Mapping[str, Any]

    def list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, ())
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    @property
    def section(self) -> Mapping[str, Any]:
        value = self.data.get(self.ecosystem, {})
        return value if isinstance(value, dict) else {}

    @property
    def toolchain(self) -> str:
        return str(self.data.get("toolchain") or "the build tools")

    def image_for(self, image: str) -> RuntimeImage | None:
        for rule in self.data.get("images", ()):
            match = re.search(str(rule.get("match", "(?!)")), image)
            if match is None:
                continue
            groups = {k: v or "" for k, v in match.groupdict().items()}
            groups["image"] = image
            values = {k: v.format(**groups) if isinstance(v, str) else v for k, v in rule.items() if k != "match"}
            follows = "{" in str(rule.get("runtime", "{image}"))
            return RuntimeImage(image, str(values.get("runtime", image)), values, follows)
        return None


@dataclass(frozen=True)
class Templates:
    by_ecosystem: Mapping[str, Template]

    def __getitem__(self, ecosystem: str) -> Template:
        return self.by_ecosystem.get(ecosystem) or Template(ecosystem, {})

    @property
    def common(self) -> Mapping[str, Any]:
        return self["common"].data

    def common_table(self, *keys: str) -> Mapping[str, Any]:
        value: Any = self.common
        for key in keys:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return value if isinstance(value, dict) else {}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if key == "images" and isinstance(value, list):
            out[key] = [*value, *(old or [])]
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *(v for v in value if v not in old)]
        else:
            out[key] = value
    return out


def _read_template(path: Path, text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid multi-stage template: {err}") from None
    if not isinstance(data.get("ecosystem"), str):
        raise ConfigError(f'{path}: a multi-stage template needs `ecosystem = "..."`')
    for rule in data.get("images", ()):
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str):
            raise ConfigError(f"{path}: every [[images]] entry needs a `match` regular expression")
        try:
            re.compile(rule["match"])
        except re.error as err:
            raise ConfigError(f"{path}: bad `match` {rule['match']!r}: {err}") from None
    return data


@cache
def _builtin() -> tuple[tuple[str, dict[str, Any]], ...]:
    folder = resources.files("dopt").joinpath("templates")
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = _read_template(Path(str(entry)), entry.read_text(encoding="utf-8"))
            found.append((data["ecosystem"], data))
    return tuple(found)


@cache
def _user_files(path: str, stamp: tuple[tuple[str, float], ...]) -> tuple[tuple[str, dict[str, Any]], ...]:
    del stamp  # part of the cache key only: edited files are read again
    root = Path(path)
    files = sorted(root.glob("*.toml")) if root.is_dir() else [root]
    out = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{file}: cannot read multi-stage template: {err.strerror}") from None
        data = _read_template(file, text)
        out.append((data["ecosystem"], data))
    return tuple(out)


def load_templates(options: Mapping[str, Any], dockerfile: str | None = None) -> Templates:
    """The built-in templates extended by the user's ``multistage-templates`` (a file or folder).

    A relative path is looked up from the Dockerfile's folder upwards, then in the current folder.
    """
    merged: dict[str, dict[str, Any]] = {}
    for name, data in _builtin():
        merged[name] = _merge(merged.get(name, {}), data)
    configured = options.get(OPTION_TEMPLATES)
    if configured:
        if not isinstance(configured, str):
            raise ConfigError(f"[tool.dopt.rules] {OPTION_TEMPLATES} must be a path (a string)")
        path = _find_user_path(configured, dockerfile)
        if path is None:
            raise ConfigError(f"[tool.dopt.rules] {OPTION_TEMPLATES}: {configured} does not exist")
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        stamp = tuple((str(f), f.stat().st_mtime) for f in files if f.exists())
        for name, data in _user_files(str(path), stamp):
            merged[name] = _merge(merged.get(name, {}), data)
    return Templates({name: Template(name, data) for name, data in merged.items()})


def _find_user_path(configured: str, dockerfile: str | None) -> Path | None:
    candidate = Path(configured).expanduser()
    if candidate.is_absolute():
        return candidate if candidate.exists() else None
    if dockerfile:
        folder = Path(dockerfile).resolve().parent
        for parent in (folder, *folder.parents):
            if (parent / candidate).exists():
                return parent / candidate
    return candidate.resolve() if candidate.exists() else None


def normalize_image(image: str) -> str | None:
    """``docker.io/library/python`` -> ``python:latest``; None for a digest-only reference."""
    ref = image.strip()
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
    if ref.startswith("library/"):
        ref = ref[len("library/") :]
    name, at, _digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        if at:
            return None
        name += ":latest"
    return name


# ----------------------------------------------------------------------------------------------
# The build context
# ----------------------------------------------------------------------------------------------


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


# ----------------------------------------------------------------------------------------------
# Analysis of the single-stage Dockerfile
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyIn:
    """A COPY or ADD of the original file, with its destination resolved."""

    ins: Instruction
    index: int
    sources: tuple[str, ...]
    dest: str | None  # absolute, None when it depends on an unknown value
    dest_is_dir: bool
    from_image: str | None
    chown: str | None
    workdir: str | None

    @property
    def from_context(self) -> bool:
        return self.from_image is None

    def context_sources(self) -> list[str]:
        """The sources as context-relative paths (URLs left out)."""
        out = []
        for src in self.sources:
            if "://" in src or src.startswith("git@"):
                continue
            out.append(posixpath.normpath(src).lstrip("/").removeprefix("./") if src not in (".", "./") else "")
        return out


@dataclass(frozen=True)
class RunStep:
    ins: Instruction
    index: int
    script: ShellScript | None  # None for exec form
    argv: tuple[str, ...]  # exec form words
    workdir: str | None
    user: str | None

    def commands(self) -> tuple[Command, ...]:
        return self.script.commands() if self.script is not None else ()

    def invocations(self) -> list[Invocation]:
        found = []
        for command in self.commands():
            inv = invocation_of(command)
            if inv is not None:
                found.append(inv)
        return found

    def text(self, start: int, end: int) -> str:
        assert self.script is not None
        return self.script.text[start:end]

    def position(self, command: Command | None = None) -> Position:
        """Where ``command`` runs in the build; without one, where this RUN ends."""
        if command is not None:
            return (self.index, command.start)
        return (self.index, len(self.script.text) if self.script is not None else 0)


@dataclass(frozen=True)
class RuntimeCommand:
    """A program the container runs at run time, and where that was found."""

    name: str  # as written: a bare name or a path
    origin: str
    args: tuple[str, ...] = ()  # the words after the program ("" where not static)


# Options that take a value, for the programs whose arguments the rules read: without them
# `git clone --depth 1 URL DIR` would name `1` and the URL as the folder it writes. Keys are
# "program" or "program subcommand". Go flags are single-dash words (`-ldflags`), not clusters.
# fmt: off
_CURL = {"-o", "--output", "--output-dir", "-H", "--header", "-d", "--data", "--data-raw", "--data-binary",
         "--data-urlencode", "-F", "--form", "-u", "--user", "-A", "--user-agent", "-e", "--referer", "-X",
         "--request", "-x", "--proxy", "-m", "--max-time", "--connect-timeout", "--retry", "--retry-delay",
         "--retry-max-time", "-w", "--write-out", "-b", "--cookie", "-c", "--cookie-jar", "--cacert", "--capath",
         "-E", "--cert", "--key", "-T", "--upload-file", "-r", "--range", "-C", "--continue-at", "-K", "--config",
         "--limit-rate", "-z", "--time-cond", "--resolve", "--interface", "--proto", "--proto-redir",
         "--max-redirs", "-Y", "--speed-limit", "-y", "--speed-time"}
_WGET = {"-O", "--output-document", "-P", "--directory-prefix", "-o", "--output-file", "-a", "--append-output",
         "-U", "--user-agent", "--header", "-t", "--tries", "-T", "--timeout", "-w", "--wait", "--user",
         "--password", "-e", "--execute", "-i", "--input-file", "-B", "--base", "--post-data", "--post-file",
         "--ca-certificate", "--certificate", "--private-key", "-Q", "--quota", "-l", "--level", "-A", "--accept",
         "-R", "--reject", "-D", "--domains", "--limit-rate"}
_GIT_CLONE = {"-b", "--branch", "--depth", "-o", "--origin", "-c", "--config", "--reference", "--reference-if-able",
              "--separate-git-dir", "-j", "--jobs", "--filter", "--shallow-since", "--shallow-exclude", "-u",
              "--upload-pack", "--template", "--server-option", "--bundle-uri"}
_TAR = {"-C", "--directory", "-f", "--file", "-T", "--files-from", "-X", "--exclude-from", "--exclude", "--owner",
        "--group", "--mode", "--transform", "--strip-components", "-b", "--blocking-factor", "-I",
        "--use-compress-program"}
_FILE_TOOLS = {"-t", "--target-directory", "-S", "--suffix"}
_GO = {"-o", "-p", "-C", "-asmflags", "-buildmode", "-compiler", "-gccgoflags", "-gcflags", "-installsuffix",
       "-ldflags", "-mod", "-modfile", "-overlay", "-pgo", "-pkgdir", "-tags", "-toolexec", "-exec", "-coverpkg",
       "-covermode"}
_CARGO = {"--bin", "--example", "-p", "--package", "-F", "--features", "--target", "--target-dir", "--profile",
          "--manifest-path", "-j", "--jobs", "--config", "-Z", "--color", "--root", "--version", "--git", "--branch",
          "--tag", "--rev", "--path", "--registry", "--index", "--message-format"}
_DOTNET = {"-o", "--output", "-c", "--configuration", "-r", "--runtime", "-f", "--framework", "-s", "--source",
           "-v", "--verbosity", "-a", "--arch", "--os", "--version-suffix"}
_PIP = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url", "--extra-index-url",
        "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--upgrade-strategy", "--platform",
        "--python-version", "--implementation", "--abi", "--cache-dir", "--log", "--proxy", "--retries", "--timeout",
        "--trusted-host", "--cert", "--client-cert", "--progress-bar", "--root-user-action", "-C",
        "--config-settings", "--global-option", "--no-binary", "--only-binary"}
VALUE_OPTIONS: dict[str, frozenset[str]] = {
    "curl": frozenset(_CURL),
    "wget": frozenset(_WGET),
    "git clone": frozenset(_GIT_CLONE),
    "tar": frozenset(_TAR),
    "unzip": frozenset({"-d", "-P"}),
    "cp": frozenset(_FILE_TOOLS),
    "mv": frozenset(_FILE_TOOLS),
    "ln": frozenset(_FILE_TOOLS),
    "install": frozenset({*_FILE_TOOLS, "-m", "--mode", "-o", "--owner", "-g", "--group"}),
    "mkdir": frozenset({"-m", "--mode"}),
    "touch": frozenset({"-d", "--date", "-r", "--reference", "-t"}),
    "sed": frozenset({"-e", "--expression", "-f", "--file", "-l", "--line-length"}),
    "chown": frozenset({"--reference", "--from"}),
    "go build": frozenset(_GO),
    "go install": frozenset(_GO),
    "cargo build": frozenset(_CARGO),
    "cargo install": frozenset(_CARGO),
    "dotnet publish": frozenset(_DOTNET),
    "pip install": frozenset(_PIP),
}
# fmt: on
# Programs whose options are whole words (`-ldflags x`, `-o=x`), never clusters of letters.
_WORD_OPTIONS = frozenset({"go"})


@dataclass(frozen=True)
class Arguments:
    """The options (name, value) and operands of a command, after its program and subcommand.

    A value or operand is None where it is not static (``$DIR``, ``*.tar.gz``)."""

    options: tuple[tuple[str, str | None], ...]
    operands: tuple[str | None, ...]

    def value(self, *names: str) -> str | None:
        """The value of the last of ``names`` given (``-o x``, ``-ox``, ``-fsSLo x``, ``--output=x``)."""
        found = None
        for name, value in self.options:
            if name in names:
                found = value
        return found

    def has(self, *names: str) -> bool:
        """Whether any of ``names`` is given; a name may include its value (``--location=global``)."""
        return any(name in names or f"{name}={value}" in names for name, value in self.options)


def arguments(inv: Invocation, *value_options: str) -> Arguments:
    """Parse the words after the program (and subcommand) with what ``VALUE_OPTIONS`` knows of it;
    ``value_options`` are further options known to take a value."""
    first = inv.subcommand_index if inv.subcommand_index is not None else inv.program_index
    words = [w.value for w in inv.command.words[first + 1 :]]
    key = f"{inv.program} {inv.subcommand}" if inv.subcommand_index is not None else inv.program
    if inv.subcommand_index is None and words and f"{key} {words[0]}" in VALUE_OPTIONS:
        key, words = f"{key} {words[0]}", words[1:]  # a subcommand the shell layer does not know
    if key == "tar" and words and words[0] and not words[0].startswith("-"):
        words[0] = "-" + words[0]  # the old style: `tar xzf file` is `tar -xzf file`
    takes_value = VALUE_OPTIONS.get(key, frozenset()) | set(value_options)
    clustered = inv.program not in _WORD_OPTIONS
    options: list[tuple[str, str | None]] = []
    found: list[str | None] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word is None or word == "-" or not word.startswith("-"):
            found.append(word)
            continue
        if word == "--":
            found.extend(words[i:])
            break
        if word.startswith("--") or not clustered:
            name, equals, value = word.partition("=")
            if not clustered:
                name = "-" + name.lstrip("-")
            if equals:
                options.append((name, value))
            elif name in takes_value:
                options.append((name, words[i] if i < len(words) else None))
                i += 1
            else:
                options.append((name, None))
            continue
        for position, letter in enumerate(word[1:], start=1):
            name = "-" + letter
            if name not in takes_value:
                options.append((name, None))
                continue
            if position < len(word) - 1:
                options.append((name, word[position + 1 :]))
            else:
                options.append((name, words[i] if i < len(words) else None))
                i += 1
            break
    return Arguments(tuple(options), tuple(found))


def option_value(inv: Invocation, *names: str) -> str | None:
    """The value of ``-o x``, ``-ox``, ``--output x`` or ``--output=x`` (the last one given)."""
    return arguments(inv, *names).value(*names)


def has_flag(inv: Invocation, *names: str) -> bool:
    return arguments(inv).has(*names)


def subcommand(inv: Invocation) -> str | None:
    """The subcommand, also of programs the shell layer does not know to take one (``dotnet publish``)."""
    if inv.subcommand is not None:
        return inv.subcommand
    return inv.operands[0].value if inv.operands else None


def operands(inv: Invocation) -> list[str | None]:
    return [w.value for w in inv.operands]


def join_path(base: str | None, path: str) -> str | None:
    if path.startswith("/"):
        return posixpath.normpath(path)
    if base is None:
        return None
    return posixpath.normpath(posixpath.join(base, path))


def is_under(path: str, folder: str) -> bool:
    return path == folder or folder == "/" or path.startswith(folder.rstrip("/") + "/")


def collapse(paths: Iterable[str]) -> list[str]:
    """Paths without those inside another one of them, in first-seen order."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(o != p and is_under(p, o) for o in unique)]


# Where in the build something happens: (index of the instruction, offset of the command in its RUN
# script, or -1 for the instruction itself). The base image's files come before everything.
Position = tuple[int, int]
BASE: Position = (-1, -1)
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>"})


@dataclass(frozen=True)
class FileChange:
    """What a RUN command does to a path of the image: writes it, removes it, or moves ``source`` to it."""

    at: Position
    kind: str  # "write", "remove" or "move"
    path: str | None  # None: a path dopt cannot resolve
    how: str
    source: str | None = None

    def undoes(self, path: str) -> bool:
        """Whether this change removes ``path`` or moves it away."""
        gone = self.source if self.kind == "move" else self.path if self.kind == "remove" else None
        return gone is not None and is_under(path, gone)


def command_dirs(step: RunStep) -> Iterator[tuple[Command, str | None]]:
    """Each command of a RUN with the folder it runs in: the WORKDIR, changed by ``cd`` (None when unknown)."""
    cwd = step.workdir
    detached: dict[int, str | None] = {}  # `cd` in a subshell or pipeline: only for that item
    for command in step.commands():
        own = command.context.runs_in_current_shell
        here = cwd if own else detached.get(command.context.item, cwd)
        yield command, here
        inv = invocation_of(command)
        if inv is None or inv.program != "cd":
            continue
        targets = arguments(inv).operands
        target = join_path(here, targets[0]) if targets and targets[0] and targets[0] != "-" else None
        if own:
            cwd = target
        else:
            detached[command.context.item] = target


def command_dir(step: RunStep, command: Command) -> str | None:
    """The folder one command of a RUN runs in."""
    return next((cwd for other, cwd in command_dirs(step) if other is command), step.workdir)


def _into(folder: str | None, name: str | None) -> str | None:
    if folder is None or not name:
        return folder
    return join_path(folder, posixpath.basename(name.rstrip("/")))


def _url_name(url: str | None) -> str | None:
    """The file name a download of ``url`` gets (None when its path names no file)."""
    if not url or "://" not in url:
        return None
    _, slash, path = url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0].partition("/")
    if not slash or not path or path.endswith("/"):
        return None
    return path.rsplit("/", 1)[-1]


def command_changes(command: Command, cwd: str | None, at: Position, dirs: set[str]) -> Iterator[FileChange]:
    """The paths one command writes, removes or moves (``dirs``: folders known to exist, extended here)."""
    for redirect in command.redirects:
        if redirect.operator in _WRITE_REDIRECTS and redirect.target is not None and redirect.target.value:
            yield FileChange(at, "write", join_path(cwd, redirect.target.value), "a redirection")
    inv = invocation_of(command)
    if inv is None:
        return
    program = inv.program
    args = arguments(inv)
    ops = args.operands

    def path(value: str | None) -> str | None:
        return join_path(cwd, value) if value else None

    if program == "mkdir" or (program == "install" and args.has("-d", "--directory")):
        dirs.update(p for p in map(path, ops) if p)
    elif program in ("cp", "mv", "install"):
        folder = path(args.value("-t", "--target-directory"))
        sources = list(ops) if folder else list(ops[:-1])
        target = folder or path(ops[-1] if ops else None)
        if not sources or target is None:
            return
        into = folder is not None or len(sources) > 1 or (ops[-1] or "").endswith("/")
        into = into or target in SYSTEM_DIRS or target in dirs
        for source in sources:
            written = _into(target, source) if into else target
            if program == "mv":
                yield FileChange(at, "move", written, "`mv`", path(source))
            else:
                yield FileChange(at, "write", written, f"`{program}`")
    elif program == "rm":
        for value in ops:
            if value:
                yield FileChange(at, "remove", path(value), "`rm`")
    elif program == "curl":
        if args.value("-o", "--output"):
            if args.value("-o", "--output") != "-":
                yield FileChange(at, "write", path(args.value("-o", "--output")), "curl")
        elif args.has("-O", "--remote-name", "--remote-name-all"):
            folder = path(args.value("--output-dir")) if args.value("--output-dir") else cwd
            for url in ops:
                yield FileChange(at, "write", _into(folder, _url_name(url)), "curl")
    elif program == "wget":
        output = args.value("-O", "--output-document")
        if output and output != "-":
            yield FileChange(at, "write", path(output), "wget")
        elif output is None:
            folder = path(args.value("-P", "--directory-prefix")) if args.value("-P", "--directory-prefix") else cwd
            for url in ops:
                if _url_name(url):
                    yield FileChange(at, "write", _into(folder, _url_name(url)), "wget")
    elif program == "tar":
        if args.has("-x", "--extract", "--get"):
            folder = args.value("-C", "--directory")
            yield FileChange(at, "write", path(folder) if folder else cwd, "tar")
        elif args.has("-c", "--create") and args.value("-f", "--file") not in (None, "-"):
            yield FileChange(at, "write", path(args.value("-f", "--file")), "tar")
    elif program == "unzip":
        folder = args.value("-d")
        yield FileChange(at, "write", path(folder) if folder else cwd, "unzip")
    elif program == "git" and inv.subcommand == "clone" and ops and ops[0]:
        folder = ops[1] if len(ops) > 1 else posixpath.basename(ops[0].rstrip("/")).removesuffix(".git")
        yield FileChange(at, "write", path(folder), "git clone")
    elif program == "sed" and args.has("-i", "--in-place"):
        files = ops if args.has("-e", "--expression", "-f", "--file") else ops[1:]
        for value in files:
            yield FileChange(at, "write", path(value), "sed -i")


class Analysis:
    """What a single-stage Dockerfile does, as the multi-stage planners need it."""

    def __init__(self, ctx: Context, templates: Templates, stage: Stage, image: str) -> None:
        self.ctx = ctx
        self.doc = ctx.document
        self.templates = templates
        self.stage = stage
        self.image = image  # normalized builder image
        self.files = open_context(ctx)[0] or BuildContext(None)
        self.instructions = stage.instructions
        self.copies: list[CopyIn] = []
        self.runs: list[RunStep] = []
        self.workdirs: dict[int, str | None] = {}
        self.final_workdir: str | None = None
        self.default_workdir = "/"
        self._changes: list[FileChange] | None = None

    # The builder image's WORKDIR is known only through a template; planners set it before `scan`.
    def scan(self, default_workdir: str) -> None:
        self.default_workdir = default_workdir
        self.copies, self.runs, self.workdirs, self._changes = [], [], {}, None
        workdir: str | None = default_workdir
        model = self.ctx.model
        for index, ins in enumerate(self.instructions):
            self.workdirs[ins.start] = workdir
            scope = model.scope_of(ins)
            variables = scope.variables()
            name = ins.name
            if name == "WORKDIR" and ins.values:
                value = expand(ins.values[0], variables, self.doc.escape)
                workdir = None if value is None else join_path(workdir, value) if workdir else join_path(None, value)
            elif name in ("COPY", "ADD") and len(ins.values) >= 2 and not ins.heredocs:
                self.copies.append(self._copy(ins, index, variables, workdir))
            elif name == "RUN":
                script = None
                argv: tuple[str, ...] = ()
                if ins.json:
                    argv = ins.values
                    if len(argv) >= 3 and posixpath.basename(argv[0]) in _SHELLS and argv[1] == "-c":
                        script = parse_shell(argv[2])
                elif not ins.heredocs:
                    script = parse_shell(ins.args)
                self.runs.append(RunStep(ins, index, script, argv, workdir, scope.user))
        self.final_workdir = workdir

    def _copy(self, ins: Instruction, index: int, variables: Mapping[str, str], workdir: str | None) -> CopyIn:
        values = [
            expand(v, variables, self.doc.escape) if ins.name != "ADD" or "://" not in v else v for v in ins.values
        ]
        sources = tuple(v or "" for v in values[:-1])
        raw_dest = values[-1]
        dest = None if raw_dest is None else join_path(workdir, raw_dest)
        from_image = next((f.value for f in ins.flags if f.name == "from"), None)
        chown = next((f.value for f in ins.flags if f.name == "chown"), None)
        is_dir = bool(
            raw_dest is not None
            and (raw_dest.endswith("/") or raw_dest in (".", "./") or len(sources) > 1
                 or any(ch in s for s in sources for ch in "*?["))
        )  # fmt: skip
        if not is_dir and from_image is None and len(sources) == 1:
            rel = CopyIn(ins, index, sources, dest, False, None, None, workdir).context_sources()
            if rel and (rel[0] == "" or self.files.is_dir(rel[0])):
                is_dir = True
        return CopyIn(ins, index, sources, dest, is_dir, from_image, chown, workdir)

    # -- queries ------------------------------------------------------------------------------

    def file_changes(self) -> list[FileChange]:
        """What the RUN commands write, remove and move, in build order."""
        if self._changes is None:
            dirs = {w for w in self.workdirs.values() if w} | {c.dest for c in self.copies if c.dest and c.dest_is_dir}
            self._changes = [
                change
                for step in self.runs
                if step.script is not None and not step.script.has_errors
                for command, cwd in command_dirs(step)
                for change in command_changes(command, cwd, step.position(command), dirs)
            ]
        return self._changes

    @property
    def end(self) -> Position:
        """After the last instruction: where things the build made at an unknown step were made."""
        return (len(self.instructions), -1)

    def undone_after(self, at: Position, path: str) -> bool:
        """Whether a RUN after ``at`` removes ``path`` or moves it away."""
        return any(c.at > at and c.undoes(path) for c in self.file_changes())

    @cached_property
    def final_scope_env(self) -> dict[str, str]:
        last = self.instructions[-1] if self.instructions else self.stage.from_instruction
        scope = self.ctx.model.scope_of(last)
        env = dict(scope.env)
        if last.name == "ENV":
            for i in range(0, len(last.values) - 2, 3):
                env[last.values[i]] = last.values[i + 1]
        return env

    def env_value(self, name: str) -> str | None:
        return self.final_scope_env.get(name)

    def invocations(self, program: str, *subcommands: str) -> list[tuple[RunStep, Invocation]]:
        found = []
        for step in self.runs:
            for inv in step.invocations():
                if inv.program == program and (not subcommands or subcommand(inv) in subcommands):
                    found.append((step, inv))
        return found

    def instructions_named(self, *names: str) -> list[Instruction]:
        return [ins for ins in self.instructions if ins.name in names]

    def copy_paths(self, copy: CopyIn) -> list[str]:
        """Where a COPY/ADD put things in the image (a folder for folder sources)."""
        if copy.dest is None:
            return []
        if not copy.dest_is_dir:
            return [copy.dest]
        out = []
        for src in copy.sources:
            base = posixpath.basename(posixpath.normpath(src)) if "://" not in src else src.rsplit("/", 1)[-1]
            if src in (".", "./", "/") or src.endswith("/") or any(ch in src for ch in "*?["):
                out.append(copy.dest)
            elif copy.from_context and self.files.available:
                rel = copy.context_sources()[copy.sources.index(src)] if "://" not in src else None
                out.append(
                    copy.dest if rel is not None and self.files.is_dir(rel) else join_path(copy.dest, base) or ""
                )
            elif "." not in base and "://" not in src:
                out.append(copy.dest)  # probably a folder: its contents went into dest
            else:
                out.append(join_path(copy.dest, base) or copy.dest)
        return out

    def context_file_for(self, path: str) -> str | None:
        """The context file a COPY put at ``path`` in the image (None when unknown)."""
        for copy in reversed(self.copies):
            if not copy.from_context or copy.dest is None:
                continue
            for src, rel in zip(copy.sources, copy.context_sources(), strict=False):
                if "://" in src:
                    continue
                if copy.dest_is_dir:
                    if rel == "" or self.files.is_dir(rel):
                        if is_under(path, copy.dest):
                            inner = posixpath.relpath(path, copy.dest)
                            candidate = posixpath.normpath(posixpath.join(rel, inner)) if rel else inner
                            if self.files.is_file(candidate):
                                return candidate
                    elif join_path(copy.dest, posixpath.basename(rel)) == path and self.files.is_file(rel):
                        return rel
                elif copy.dest == path and self.files.is_file(rel):
                    return rel
        return None

    def manifest(self, name: str) -> str | None:
        """A project file (package.json, go.mod ...) the build copies from the context."""
        candidates = [name]
        for copy in self.copies:
            for rel in copy.context_sources() if copy.from_context else ():
                if rel and self.files.is_dir(rel):
                    candidates.append(f"{rel}/{name}")
        for candidate in candidates:
            if self.files.is_file(candidate):
                return self.files.read_text(candidate)
        return None

    def source_files(self, suffixes: tuple[str, ...], skip: Iterable[str] = ()) -> Iterator[tuple[str, str]]:
        """(path, text) of context files with one of ``suffixes`` that the build copies."""
        skipped = {"node_modules", ".git", "vendor", "target", "dist", "build", ".venv", "venv", "__pycache__", *skip}
        roots = set()
        for copy in self.copies:
            if copy.from_context:
                for rel in copy.context_sources():
                    roots.add(rel)
        seen = set()
        for root in sorted(roots):
            if root == "" or self.files.is_dir(root):
                paths: Iterable[str] = self.files.files(root, skipped)
            else:
                paths = [root]
            for path in paths:
                if path in seen or not path.endswith(suffixes):
                    continue
                seen.add(path)
                text = self.files.read_text(path)
                if text is not None:
                    yield path, text


# ----------------------------------------------------------------------------------------------
# Runtime commands: what the container runs, to check the runtime stage still has it
# ----------------------------------------------------------------------------------------------

_SHELL_OUT = (
    re.compile(
        r"(?:subprocess\.(?:run|call|check_call|check_output|Popen)|os\.system|os\.popen|os\.exec\w*)"
        r"\(\s*\[?\s*[rbuf]?[\"'](?P<cmd>[\w.+/-]+)"
    ),
    re.compile(r"\b(?:exec|execSync|execFile|execFileSync|spawn|spawnSync|fork)\(\s*[\"'`](?P<cmd>[\w.+/-]+)"),
    re.compile(r"exec\.Command(?:Context)?\(\s*(?:\w+\s*,\s*)?\"(?P<cmd>[\w.+/-]+)\""),
    re.compile(r"Command::new\(\s*\"(?P<cmd>[\w.+/-]+)\""),
    re.compile(
        r"(?:Runtime\.getRuntime\(\)\.exec|new\s+ProcessBuilder)\(\s*(?:new\s+String\[\]\s*\{\s*)?\"(?P<cmd>[\w.+/-]+)"
    ),
    re.compile(r"Process\.Start\(\s*\"(?P<cmd>[\w.+/-]+)\""),
)
_APP_SOURCE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".go", ".rs", ".java", ".kt", ".cs", ".rb")
_NOT_APP_CODE = re.compile(
    r"(^|/)(setup\.py|noxfile\.py|fabfile\.py|conftest\.py|gulpfile\.js|Gruntfile\.js|"
    r"webpack\.config\.\w+|vite\.config\.\w+|build\.rs|[^/]*_test\.go|test_[^/]*\.py|"
    r"[^/]*\.test\.\w+|[^/]*\.spec\.\w+)$|(^|/)(tests?|scripts?|build|tools)/"
)


def _argv_commands(argv: tuple[str, ...], origin: str) -> Iterator[RuntimeCommand]:
    if not argv:
        return
    if posixpath.basename(argv[0]) in _SHELLS and len(argv) >= 3 and argv[1] in ("-c", "-ec", "-lc", "-xc"):
        yield from script_commands(argv[2], origin)
        return
    yield from script_commands(" ".join(_shell_quote(a) for a in argv), origin)


def _shell_quote(word: str) -> str:
    return word if re.fullmatch(r"[\w./:=@%+,-]+", word) else "'" + word.replace("'", "'\\''") + "'"


def script_commands(script: str, origin: str) -> Iterator[RuntimeCommand]:
    parsed = parse_shell(script)
    for command in parsed.commands():
        inv = invocation_of(command)
        if inv is None or not inv.program_word.value:
            continue
        name = inv.program_word.value
        if inv.program == "pip" and name != "pip":  # python -m pip: the program is python
            name = command.words[inv.start_index].value or name
        args = tuple(w.value or "" for w in command.words[inv.program_index + 1 :])
        yield RuntimeCommand(name, origin, args)


def instruction_commands(ins: Instruction) -> Iterator[RuntimeCommand]:
    """Programs a CMD, ENTRYPOINT or HEALTHCHECK runs."""
    name = ins.name
    values = ins.values
    if name == "HEALTHCHECK":
        if not values or values[0].upper() != "CMD":
            return
        values = values[1:]
    origin = name if name != "HEALTHCHECK" else "HEALTHCHECK"
    if ins.json:
        yield from _argv_commands(tuple(values), origin)
    elif values:
        yield from script_commands(values[0], origin)


def shell_outs(analysis: Analysis) -> Iterator[RuntimeCommand]:
    """Programs the application's own code starts (subprocess, exec.Command, child_process ...)."""
    for path, text in analysis.source_files(_APP_SOURCE_SUFFIXES):
        if _NOT_APP_CODE.search(path):
            continue
        for regex in _SHELL_OUT:
            for match in regex.finditer(text):
                yield RuntimeCommand(match.group("cmd"), path)


# ----------------------------------------------------------------------------------------------
# The plan and the rewrite
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyOut:
    src: str
    dest: str
    why: str
    at: Position  # where the build made it
    chown: str | None = None

    def line(self, stage: str) -> str:
        flags = f"--from={stage}" + (f" --chown={self.chown}" if self.chown else "")
        if re.fullmatch(r"[\w./@+:=,*-]+", self.src + self.dest):
            return f"COPY {flags} {self.src} {self.dest}"
        return f"COPY {flags} {json.dumps([self.src, self.dest])}"


@dataclass
class Plan:
    """What the rewrite does; filled by the analysis, the ecosystem and the common steps."""

    ecosystem: str
    builder_image: str
    runtime_image: str
    stage_name: str = BUILD_STAGE
    builder_before: dict[int, list[str]] = field(default_factory=dict)  # lines inserted before instruction i
    builder_after: list[str] = field(default_factory=list)
    runtime_env: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)  # runtime system packages
    setup: list[str] = field(default_factory=list)  # RUN lines before the copies (users, tools)
    copies: list[CopyOut] = field(default_factory=list)
    after_copy: list[str] = field(default_factory=list)
    replace_final: list[str] | None = None  # static sites: CMD/ENTRYPOINT replaced by these lines
    drop_user: bool = False
    has_shell: bool = True
    static: bool = False  # the built program needs no system libraries (CGO_ENABLED=0)
    allow_static: bool = True  # False: keep the build as it links (the static runtime cannot serve)
    manager: str = "none"  # how the runtime stage installs packages: apt, apk or none (no shell either)
    notes: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)  # paths of built programs in the runtime image
    provided: set[str] = field(default_factory=set)  # commands the runtime stage installs or copies

    def insert_before(self, index: int, line: str) -> None:
        self.builder_before.setdefault(index, []).append(line)

    def copy(self, src: str, why: str, at: Position, dest: str | None = None, chown: str | None = None) -> None:
        """Copy ``src`` (made at ``at`` in the build) from the build stage."""
        dest = dest or src
        if any(is_under(src, c.src) and is_under(dest, c.dest) for c in self.copies):
            return
        self.copies = [c for c in self.copies if not (is_under(c.src, src) and c.src != src)]
        self.copies.append(CopyOut(src, dest, why, at, chown))

    def add_packages(self, names: Iterable[str], why: str) -> None:
        new = [n for n in names if n not in self.packages]
        if new:
            self.packages.extend(new)
            self.notes.append(f"installs {', '.join(new)} ({why})")

    def covered(self, path: str) -> bool:
        return any(is_under(path, c.dest) for c in self.copies) or path in self.artifacts

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


def _attached_comments(doc: Document) -> dict[int, list[Trivia]]:
    """For each instruction (by start), the comment lines directly above it."""
    out: dict[int, list[Trivia]] = {}
    pending: list[Trivia] = []
    for node in doc.nodes:
        if isinstance(node, Trivia):
            if node.kind == "comment":
                pending.append(node)
            else:
                pending = []
            continue
        out[node.start] = pending
        pending = []
    return out


def render(analysis: Analysis, plan: Plan, install_template: str | None) -> Edit:
    """The edit replacing the whole instruction region (from FROM to the last instruction).

    Blank lines and comments belong to the instruction they precede: they move with it, verbatim.
    An instruction both stages need stays in the build stage with them and is repeated in the
    runtime stage with the comments directly above it."""
    doc = analysis.doc
    source = doc.source
    stage = analysis.stage
    nl = doc.newline_at(stage.from_instruction.start)
    from_ins = stage.from_instruction
    instructions = list(stage.instructions)
    region_start = from_ins.start
    region_end = (instructions[-1] if instructions else from_ins).end
    comments = _attached_comments(doc)

    def text_of(node: Instruction | Trivia) -> str:
        chunk = source[node.start : node.end]
        return chunk if chunk.endswith("\n") else chunk + nl

    users = [i for i, ins in enumerate(instructions) if ins.name == "USER"]
    last_user = users[-1] if users else None
    builder_kinds = {"RUN", "COPY", "ADD"}

    def user_in_builder(i: int) -> bool:
        return any(ins.name in builder_kinds for ins in instructions[i + 1 :])

    has_name = len(from_ins.values) >= 3 and from_ins.values[1].lower() == "as"
    if has_name:
        plan.stage_name = from_ins.values[2]
        builder: list[str] = [text_of(from_ins)]
    else:
        head = source[from_ins.start : from_ins.args_end] + f" AS {plan.stage_name}"
        builder = [head + source[from_ins.args_end : from_ins.end].rstrip("\r\n") + nl]
    settings: list[str] = []
    final: list[str] = []  # instructions of the final image (and the last USER), in their order
    index_of = {ins.start: i for i, ins in enumerate(instructions)}
    leading: list[Trivia] = []  # blank lines and comments since the previous instruction
    for node in doc.nodes:
        if node.start <= from_ins.start or node.start >= region_end:
            continue
        if isinstance(node, Trivia):
            leading.append(node)
            continue
        i = index_of[node.start]
        kind = node.name
        attached = [text_of(t) for t in comments.get(node.start, [])]
        head = [text_of(t) for t in leading[: len(leading) - len(attached)]]
        inserted = [line + nl for line in plan.builder_before.get(i, [])]
        own = [*attached, text_of(node)]
        leading = []
        if kind in BOTH:
            settings.extend(own)
        if kind == "USER" and user_in_builder(i):
            builder.extend([*head, *inserted, *own])
            if i == last_user and not plan.drop_user:
                final.extend(own)
        elif kind == "USER" and (i != last_user or plan.drop_user):
            builder.extend([*head, *inserted, *attached])  # no stage needs it; what was said stays
        elif kind in ("CMD", "ENTRYPOINT") and plan.replace_final is not None:
            builder.extend(inserted)
            final.extend([*head, *attached])  # the command is replaced; what was said about it stays
        elif kind == "LABEL":
            builder.extend(inserted)
            settings.extend([*head, *own])
        elif kind in FINAL_ONLY or kind == "USER":
            builder.extend(inserted)
            final.extend([*head, *own])
        else:
            builder.extend([*head, *inserted, *own])
    builder.extend(line + nl for line in plan.builder_after)

    runtime = [f"FROM {plan.runtime_image}{nl}", *settings]
    runtime += [line + nl for line in plan.runtime_env]
    if plan.packages and install_template:
        runtime.append("RUN " + install_template.format(packages=" ".join(plan.packages)) + nl)
    runtime += [line + nl for line in plan.setup]
    runtime += [c.line(plan.stage_name) + nl for c in plan.copies]
    runtime += [line + nl for line in plan.after_copy]
    runtime += final
    if plan.replace_final:
        runtime += [line + nl for line in plan.replace_final]
    separator = nl if builder[-1].strip() else ""
    text = "".join(builder) + separator + "".join(runtime)
    if not source[region_start:region_end].endswith("\n"):
        text = text.rstrip("\r\n")
    return Edit(region_start, region_end, text)


# ----------------------------------------------------------------------------------------------
# The rule base class
# ----------------------------------------------------------------------------------------------


def _claimant(ctx: Context) -> tuple[type[MultiStageRule], RuntimeImage, Analysis] | None:
    """Which ecosystem's rule converts the document: every multi-stage rule asks, so it is decided
    once per pass of the rules, not once per rule."""
    return ctx.shared(_find_claimant)


def _find_claimant(ctx: Context) -> tuple[type[MultiStageRule], RuntimeImage, Analysis] | None:
    model = ctx.model
    if len(model.stages) != 1:
        return None
    stage = model.stages[0]
    if not stage.image_resolved or stage.is_scratch or (stage.platform and "$" in stage.platform):
        return None
    image = normalize_image(stage.image)
    if image is None:
        return None
    templates = load_templates(ctx.options, ctx.path)
    analysis = Analysis(ctx, templates, stage, image)
    for cls in MultiStageRule.registry:
        runtime = templates[cls.ecosystem].image_for(image)
        if runtime is None:
            continue
        analysis.scan(runtime.workdir)
        if cls().claims(analysis, runtime):
            return cls, runtime, analysis
    return None


class MultiStageRule(Rule):
    """One ecosystem's conversion. Subclasses set ``ecosystem``/``priority`` and implement
    :meth:`claims` and :meth:`plan`; everything else (packages, users, commands at run time, paths
    the build wrote, the rewrite and its invariant) is shared."""

    ecosystem: ClassVar[str]
    priority: ClassVar[int]
    fix_safety = FixSafety.UNSAFE
    fix_scope = FixScope.DOCUMENT  # splits the file into a builder and a runtime stage
    registry: ClassVar[list[type[MultiStageRule]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "ecosystem" in cls.__dict__:
            key = (cls.__module__, cls.__qualname__)
            MultiStageRule.registry[:] = [c for c in MultiStageRule.registry if (c.__module__, c.__qualname__) != key]
            MultiStageRule.registry.append(cls)
            MultiStageRule.registry.sort(key=lambda c: c.priority)

    # -- to implement ----------------------------------------------------------------------------

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        raise NotImplementedError

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        raise NotImplementedError

    def links_system_libraries(self, analysis: Analysis, plan: Plan) -> bool:
        """Whether the built program loads the system libraries the build linked (-dev packages)."""
        return True

    def runtime_available(self, name: str, analysis: Analysis, plan: Plan) -> bool | None:
        """Ecosystem knowledge about a command at run time: True/False, or None to use the defaults."""
        return None

    # -- shared -------------------------------------------------------------------------------

    def check(self, ctx: Context) -> Iterator[Finding]:
        found = _claimant(ctx)
        if found is None or found[0] is not type(self):
            return
        _, runtime, analysis = found
        stage = analysis.stage
        image = analysis.image
        analysis.scan(runtime.workdir)
        plan = self._plan(analysis, runtime, allow_static=True)
        if plan.problems and plan.static and plan.runtime_image != runtime.runtime:
            # The empty static runtime cannot serve this program (a user database, zone files, a
            # shell...): the regular runtime image, with the build as it was, may.
            fallback = self._plan(analysis, runtime, allow_static=False)
            if not fallback.problems:
                plan = fallback
        if normalize_image(plan.runtime_image) == image and not plan.builder_after:
            # The same image for both stages gains only what the build installed for itself.
            probe = Plan(self.ecosystem, stage.image, plan.runtime_image, manager=plan.manager)
            self._system_packages(analysis, runtime, probe, set())
            if not probe.left_behind:
                return
        yield self._finding(analysis, runtime, plan)

    def _plan(self, analysis: Analysis, runtime: RuntimeImage, *, allow_static: bool) -> Plan:
        plan = Plan(self.ecosystem, analysis.stage.image, runtime.runtime, manager=runtime.packages)
        plan.allow_static = allow_static
        self._unknowable(analysis, runtime, plan)
        if not plan.problems:
            self.plan(analysis, runtime, plan)
        if not plan.problems:
            self._common(analysis, runtime, plan)
        if not plan.problems and not plan.copies:
            plan.problem(
                "the build makes nothing the runtime stage would copy (no application files, build output or "
                "installed packages outside the system folders)"
            )
        return plan

    def _finding(self, analysis: Analysis, runtime: RuntimeImage, plan: Plan) -> Finding:
        template = analysis.templates[self.ecosystem]
        ins = analysis.stage.from_instruction
        if normalize_image(plan.runtime_image) == analysis.image:
            kept = "what only the build needs"
            target = f"the same {plan.runtime_image} without it"
        else:
            kept = f"{template.toolchain} of {analysis.stage.image}"
            target = f"{plan.runtime_image}"
        head = f"single-stage build: the image keeps {kept}; a build stage could run the application on {target}"
        if plan.problems:
            return self.at_instruction(analysis.ctx, ins, f"{head}, but: {'; '.join(plan.problems)}")
        edit = render(analysis, plan, self._install_template(analysis, plan))
        moved = [f"{c.src} ({c.why})" if c.src == c.dest else f"{c.src} -> {c.dest} ({c.why})" for c in plan.copies]
        parts = [f"copies {', '.join(moved)}" if moved else "copies nothing"]
        parts += plan.notes
        if plan.left_behind:
            parts.append(f"leaves behind {', '.join(plan.left_behind)}")
        description = (
            f"split into stage '{plan.stage_name}' ({analysis.stage.image}, the original steps) and a runtime "
            f"stage on {plan.runtime_image} that " + "; ".join(parts)
        )
        fix = self.make_fix(description, edit)
        return self.at_instruction(analysis.ctx, ins, f"{head}: {'; '.join(parts)}", fix)

    def _install_template(self, analysis: Analysis, plan: Plan) -> str | None:
        table = analysis.templates.common_table("packages", plan.manager)
        value = table.get("install")
        return str(value) if value else None

    def _unknowable(self, analysis: Analysis, runtime: RuntimeImage, plan: Plan) -> None:
        """Builds whose run-time needs dopt cannot work out: said in the finding rather than guessed."""
        written = analysis.stage.from_instruction.values[0]
        if "$" in written and (runtime.follows_builder or "$" in written.rpartition(":")[0] or ":" not in written):
            plan.problem(
                f"the base image comes from a build argument ({written}): the runtime image would not follow "
                "another value of it"
            )
        if not analysis.instructions_named("CMD", "ENTRYPOINT"):
            plan.problem(
                "the image sets no CMD or ENTRYPOINT: it is an environment to work in or build on, and dopt "
                "cannot tell which of its tools are needed at run time"
            )
        # A program the container finds on PATH, which the build installed and then ran (not the
        # application's own binary by its path: running that in the build is a test).
        served = {
            command.name
            for ins in analysis.instructions_named("CMD", "ENTRYPOINT")
            for command in instruction_commands(ins)
            if "/" not in command.name
        }
        build_tools = set(analysis.templates[self.ecosystem].list("build-tools"))  # reported as such later
        served = {
            name
            for name in served
            if name and name.rstrip("0123456789.") not in _BUILD_RUNTIMES and name not in build_tools
        }
        for step in analysis.runs:
            for inv in step.invocations():
                if inv.program in served:
                    plan.problem(
                        f"the RUN at line {step.ins.line} runs `{inv.program}`, the program the container runs, and "
                        "dopt cannot tell what that run leaves behind (settings, plugins, caches) for run time"
                    )
                    served.discard(inv.program)
                reads_stdin = not [v for v in arguments(inv).operands if v != "-"]
                if inv.program in _SHELLS and inv.command.context.pipeline_index > 0 and reads_stdin:
                    plan.problem(
                        f"the RUN at line {step.ins.line} pipes a downloaded script into {inv.program}, and dopt "
                        "cannot tell what it installs"
                    )

    def _package_sources(self, analysis: Analysis, plan: Plan) -> None:
        """Packages the runtime stage installs may come from a source only the build stage added."""
        added = [c.path for c in analysis.file_changes() if c.path and c.path.startswith(_PACKAGE_SOURCES)]
        added += [
            f"`{inv.program}`" for step in analysis.runs for inv in step.invocations() if inv.program in _REPO_TOOLS
        ]
        if plan.packages and added:
            plan.problem(
                f"the build adds package sources ({', '.join(dict.fromkeys(added))}) that the runtime stage's "
                f"install of {', '.join(plan.packages)} would need"
            )

    # Steps every ecosystem shares, after the ecosystem placed its artifacts.
    def _common(self, analysis: Analysis, runtime: RuntimeImage, plan: Plan) -> None:
        plan.has_shell = plan.manager != "none"
        commands = list(self.runtime_commands(analysis, plan))
        self._system_packages(analysis, runtime, plan, {posixpath.basename(c.name) for c in commands})
        self._users(analysis, plan)
        self._written_paths(analysis, plan)
        self._copied_from_elsewhere(analysis, plan)
        self._follow_changes(analysis, plan)
        self._runtime_commands(analysis, runtime, plan, commands)
        if not plan.has_shell:
            self._no_shell_checks(analysis, plan)
        self._package_sources(analysis, plan)
        if plan.packages and self._install_template(analysis, plan) is None:
            plan.problem(f"{plan.runtime_image} cannot install packages ({', '.join(plan.packages)})")

    def _system_packages(self, analysis: Analysis, runtime: RuntimeImage, plan: Plan, used: set[str]) -> None:
        manager = plan.manager
        installed: list[str] = []
        removed: set[str] = set()
        for program, install, remove in (
            ("apt-get", ("install",), ("purge", "remove", "autoremove")),
            ("apt", ("install",), ("purge", "remove", "autoremove")),
            ("apk", ("add",), ("del",)),
        ):
            for step, inv in analysis.invocations(program):
                if inv.subcommand in install:
                    for value in operands(inv):
                        if value is None:
                            plan.problem(f"a RUN installs packages named by variables ({step.ins.args[:60]})")
                        elif "=" in value and program != "apk":
                            installed.append(value.split("=", 1)[0])
                        else:
                            installed.append(value.split("=", 1)[0] if program == "apk" else value)
                elif inv.subcommand in remove:
                    removed.update(v for v in operands(inv) if v)
        for prog in ("yum", "dnf", "microdnf"):
            if analysis.invocations(prog, "install"):
                plan.problem(f"packages installed with {prog}: dopt knows runtime package names for apt and apk only")
        if not installed:
            return
        if manager not in ("apt", "apk"):
            wanted = [p for p in installed if p not in removed]
            if wanted:
                plan.problem(f"{plan.runtime_image} has no package manager for {', '.join(wanted)}")
            return
        table = analysis.templates.common_table("packages", manager)
        build_only = tuple(str(p) for p in table.get("build-only", ()))
        build_only += analysis.templates[self.ecosystem].list("build-only-packages")
        runtime_tables = table.get("runtime", {})
        links = self.links_system_libraries(analysis, plan)
        keep: list[str] = []
        left: list[str] = []
        for name in dict.fromkeys(installed):
            if name in removed:
                continue
            if matches_any(name, build_only) and name not in used:
                left.append(name)
                if name.endswith("-dev") and links and name not in ("python3-dev", "nodejs-dev"):
                    libs, differs = runtime.per_release(runtime_tables, name)
                    if differs:
                        plan.problem(
                            f"{name} was installed to build, and {differs}: name the Debian release in the "
                            "image's tag (e.g. -bookworm)"
                        )
                    elif libs is None:
                        release = runtime.release.split("|")[0]
                        plan.problem(
                            f"{name} was installed to build, and no runtime package is known for it on "
                            f"{runtime.release} (add it to [packages.{manager}.runtime.{release}] in a template)"
                        )
                    else:
                        plan.add_packages(libs, f"the runtime libraries of {name}")
            else:
                keep.append(name)
        if keep:
            plan.add_packages(keep, "installed by the original and not build-only")
        if left:
            plan.left_behind.append("build packages " + ", ".join(left))

    def _users(self, analysis: Analysis, plan: Plan) -> None:
        """Users and groups the build created: the runtime stage creates them again."""
        for step in analysis.runs:
            for inv in step.invocations():
                if inv.program in _USER_TOOLS:
                    command = inv.command
                    start = command.words[inv.start_index].start
                    line = "RUN " + step.text(start, command.end)
                    if line not in plan.setup:
                        if not plan.has_shell:
                            plan.problem(f"the runtime image has no shell to run `{line[4:]}`")
                        plan.setup.append(line)
                        plan.notes.append(f"recreates the user/group ({line[4:]})")

    def _written_paths(self, analysis: Analysis, plan: Plan) -> None:
        """Files RUN wrote outside the copied folders (and did not remove again): copy them too, or refuse."""
        changes = analysis.file_changes()
        for i, change in enumerate(changes):
            if change.kind != "remove" and change.path and not any(c.undoes(change.path) for c in changes[i + 1 :]):
                self._written(plan, change)
        for step in analysis.runs:
            if step.script is None or step.script.has_errors:
                continue
            for command, cwd in command_dirs(step):
                inv = invocation_of(command)
                if inv is None:
                    continue
                program = inv.program
                ops = list(arguments(inv).operands)
                if program in _SYSTEM_INSTALLERS and (
                    (_SYSTEM_INSTALLERS[program] is None and has_flag(inv, "-i", "--install"))
                    or (
                        _SYSTEM_INSTALLERS[program] is not None
                        and (inv.subcommand == _SYSTEM_INSTALLERS[program] or _SYSTEM_INSTALLERS[program] in ops)
                    )
                ):
                    plan.problem(
                        f"`{' '.join(w.value or '?' for w in inv.command.words)}` installs into the system, "
                        "and dopt cannot tell which of its files the application needs"
                    )
                elif program in ("mkdir", "ln", "touch"):
                    self._repeat(analysis, plan, step, command, inv, cwd)
                elif program == "chown":
                    self._top_owner(plan, cwd, ops)

    def _repeat(
        self, analysis: Analysis, plan: Plan, step: RunStep, command: Command, inv: Invocation, cwd: str | None
    ) -> None:
        """mkdir, ln and touch make something cheap to make again: repeat them when nothing copies it."""
        ops = arguments(inv).operands
        targets = [join_path(cwd, v) if v else None for v in (ops[-1:] if inv.program == "ln" else ops)]
        if any(t is None for t in targets):
            return
        at = step.position(command)
        if all(plan.covered(t) or t.startswith(SCRATCH_PREFIXES) or analysis.undone_after(at, t) for t in targets if t):
            return
        line = "RUN " + step.text(command.words[inv.start_index].start, command.end)
        if cwd != step.workdir:
            plan.problem(f"`{line[4:]}` runs in a folder changed by `cd`, which the runtime stage would not repeat")
        elif not plan.has_shell:
            plan.problem(f"the runtime image has no shell to run `{line[4:]}`")
        elif line not in plan.after_copy:
            plan.after_copy.append(line)
            plan.notes.append(f"repeats `{line[4:]}`")

    def _top_owner(self, plan: Plan, cwd: str | None, ops: list[str | None]) -> None:
        """COPY --from keeps the owner of what it copies but not of the folder itself: give it back."""
        if len(ops) < 2 or any(w is None for w in ops):
            return
        owner, targets = ops[0], [join_path(cwd, t) for t in ops[1:] if t]
        for target in targets:
            if target and any(c.dest == target for c in plan.copies):
                line = f"RUN chown {owner} {target}"
                if plan.has_shell and line not in plan.after_copy:
                    plan.after_copy.append(line)
                    plan.notes.append(f"gives {target} back to {owner} (COPY --from does not keep the folder's owner)")

    def _written(self, plan: Plan, change: FileChange) -> None:
        path = change.path
        if path is None or path.startswith(SCRATCH_PREFIXES) or plan.covered(path):
            return
        if path in SYSTEM_DIRS:
            plan.problem(f"a RUN writes into {path} ({change.how}), which dopt cannot copy as a whole")
            return
        plan.copy(path, f"written by {change.how} in the build", change.at)

    def _follow_changes(self, analysis: Analysis, plan: Plan) -> None:
        """Copies of paths a later RUN moved or removed: copy them from where they went, or not at all."""
        changes = analysis.file_changes()
        followed: list[CopyOut] = []
        for copy in plan.copies:
            src: str | None = copy.src
            dest = copy.dest
            for change in changes:
                if src is None or change.at <= copy.at or not change.undoes(src):
                    continue
                if change.kind == "remove" or change.path is None or change.source is None:
                    src = None
                    continue
                moved = posixpath.normpath(change.path + src[len(change.source) :])
                dest = moved if dest == src else dest
                src = moved
            if src != copy.src and copy.src in plan.artifacts:
                plan.artifacts = [a for a in plan.artifacts if a != copy.src] + ([src] if src else [])
            if src is not None:
                followed.append(CopyOut(src, dest, copy.why, copy.at, copy.chown))
        plan.copies = []
        for copy in followed:
            plan.copy(copy.src, copy.why, copy.at, dest=copy.dest, chown=copy.chown)

    def _copied_from_elsewhere(self, analysis: Analysis, plan: Plan) -> None:
        """COPY --from=<image> and files copied outside the application folders."""
        for copy in analysis.copies:
            if copy.from_context:
                continue
            for path in analysis.copy_paths(copy):
                if path in SYSTEM_DIRS:
                    plan.problem(f"COPY --from={copy.from_image} writes into {path}, which dopt cannot copy as a whole")
                elif not plan.covered(path):
                    plan.copy(path, f"copied from {copy.from_image}", (copy.index, -1))

    def _runtime_commands(
        self, analysis: Analysis, runtime: RuntimeImage, plan: Plan, commands: list[RuntimeCommand]
    ) -> None:
        template = analysis.templates[self.ecosystem]
        build_tools = set(template.list("build-tools"))
        full_tools = analysis.templates.common_table("tools", "full-image") if runtime.full else {}
        alpine = analysis.templates.common_table("tools", "alpine-packages")
        for command in commands:
            name = command.name
            base = posixpath.basename(name)
            if "/" in name:
                path = join_path(analysis.final_workdir, name)
                if path is not None and posixpath.dirname(path) not in BIN_DIRS:
                    if not plan.covered(path):
                        plan.problem(f"{command.origin} runs {name}, which the runtime stage would not have")
                    continue
            known = True if base in plan.provided else self.runtime_available(base, analysis, plan)
            if known is True:
                continue
            if known is False or base in build_tools:
                plan.problem(f"{command.origin} runs `{base}`, a build tool the runtime image does not have")
                continue
            if base in full_tools:
                package = str(full_tools[base])
                if plan.manager == "apk":
                    package = str(alpine.get(base, ""))
                if not package:
                    plan.problem(f"{command.origin} runs `{base}`, a build tool the runtime image does not have")
                elif package not in plan.packages:
                    plan.add_packages([package], f"{command.origin} runs {base}")

    def runtime_commands(self, analysis: Analysis, plan: Plan) -> Iterator[RuntimeCommand]:
        """Programs run at run time: CMD, ENTRYPOINT, HEALTHCHECK, scripts they start, the app's code."""
        seen: set[str] = set()
        for ins in analysis.instructions_named("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            for command in instruction_commands(ins):
                yield command
                yield from self._script_of(analysis, command, seen)
        yield from shell_outs(analysis)

    def _script_of(self, analysis: Analysis, command: RuntimeCommand, seen: set[str]) -> Iterator[RuntimeCommand]:
        """Commands of a shell script from the context that the container runs (one level deep)."""
        name = command.name
        candidates = []
        if "/" in name:
            path = join_path(analysis.final_workdir, name)
            if path:
                candidates.append(path)
        else:
            for copy in analysis.copies:
                for path in analysis.copy_paths(copy):
                    if posixpath.basename(path) == name and posixpath.dirname(path) in BIN_DIRS:
                        candidates.append(path)
        for path in candidates:
            rel = analysis.context_file_for(path)
            if rel is None or rel in seen:
                continue
            text = analysis.files.read_text(rel)
            if text is None:
                continue
            first = text.split("\n", 1)[0]
            if not (rel.endswith(_SCRIPT_SUFFIXES) or (first.startswith("#!") and re.search(r"\b(ba|da)?sh\b", first))):
                continue
            seen.add(rel)
            yield from script_commands(text, rel)

    def _no_shell_checks(self, analysis: Analysis, plan: Plan) -> None:
        for ins in analysis.instructions_named("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            if ins.name == "HEALTHCHECK" and ins.values and ins.values[0].upper() == "NONE":
                continue
            if not ins.json:
                plan.problem(f"{plan.runtime_image} has no shell for the shell form of {ins.name}")
        for ins in analysis.instructions_named("USER"):
            value = ins.values[0] if ins.values else ""
            if not re.fullmatch(r"[0-9]+(:[0-9]+)?", value):
                plan.problem(f"{plan.runtime_image} has no user database for USER {value}")

    # -- the invariant ---------------------------------------------------------------------------

    def verify(self, before: Document, after: Document) -> str | None:
        from dopt.optimizer.semantic import build_model

        old = build_model(before)
        new = build_model(after)
        if len(old.stages) != 1:
            return None
        if len(new.stages) < 2:
            return "the rewrite is not a multi-stage build"
        original = old.stages[0]
        builder, final = new.stages[0], new.stages[-1]
        keys = {builder.name or "", str(builder.index)}
        if not any(
            ins.name == "COPY" and any(f.name == "from" and (f.value or "").lower() in keys for f in ins.flags)
            for ins in final.instructions
        ):
            return "the runtime stage copies nothing from the build stage"
        build_dumps = [i.dump() for i in builder.instructions]
        wanted = [i.dump() for i in original.instructions if i.name in ("RUN", "COPY", "ADD")]
        if not _is_subsequence(wanted, build_dumps):
            return "the build stage lost or reordered a RUN/COPY/ADD of the original"
        replaced = _static_site(final)
        for group in {_order_group(i.name) for i in original.instructions if i.name in KEPT}:
            kept = [
                i.dump()
                for i in original.instructions
                if i.name in group and not (replaced and i.name in ("CMD", "ENTRYPOINT"))
            ]
            have = [i.dump() for i in final.instructions if i.name in group]
            if not _is_subsequence(kept, have):
                missing = next((d for d in kept if d not in have), kept[0])
                return f"the runtime stage does not keep `{missing}` of the original (or not in its order)"
        users = [i.dump() for i in original.instructions if i.name == "USER"]
        final_users = [i.dump() for i in final.instructions if i.name == "USER"]
        if users and (final_users[-1:] != users[-1:]) and not replaced:
            return f"the runtime stage does not run as the original's `{users[-1]}`"
        return None


# Kept instructions whose order matters only among themselves: variables and folders (each may use
# the ones before it), labels (a later one wins), the command (ENTRYPOINT resets CMD); every other
# kind on its own. A LABEL may come before an EXPOSE that preceded it.
_ORDERED_TOGETHER = (frozenset({"ENV", "ARG", "WORKDIR", "SHELL"}), frozenset({"CMD", "ENTRYPOINT"}))


def _order_group(name: str) -> frozenset[str]:
    return next((group for group in _ORDERED_TOGETHER if name in group), frozenset({name}))


def _is_subsequence(wanted: list[str], have: list[str]) -> bool:
    it = iter(have)
    return all(any(w == h for h in it) for w in wanted)


def _static_site(final: Stage) -> bool:
    """A runtime stage that serves files with a web server instead of the original command."""
    image = normalize_image(final.image) or ""
    return image.split(":", 1)[0].rsplit("/", 1)[-1] in ("nginx", "httpd", "caddy")


def env_assignments(text: str) -> list[str]:
    """Names assigned in a shell command prefix (``CGO_ENABLED=0 go build``)."""
    return re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", text)


def package_json(analysis: Analysis) -> dict[str, Any] | None:
    text = analysis.manifest("package.json")
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------------------------
# Helpers the ecosystems share
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppDir:
    """A folder (or a single file in a system folder) that holds the application."""

    path: str
    single: bool
    at: Position  # the last step that put something there


def app_dirs(analysis: Analysis, plan: Plan) -> list[AppDir]:
    """Where the application is, for interpreted code.

    Every COPY/ADD destination counts, a copied file by its folder unless that is a system folder,
    and so does every WORKDIR a RUN worked in (``npm install`` writes node_modules there).
    """
    found: dict[str, Position] = {}
    files: set[str] = set()
    for copy in analysis.copies:
        if copy.dest is None:
            plan.problem(f"`{copy.ins.name} {copy.ins.args}` has a destination dopt cannot resolve")
            continue
        for path in analysis.copy_paths(copy):
            if path.startswith(SCRATCH_PREFIXES):
                continue
            is_folder = copy.dest_is_dir and path == copy.dest
            if not is_folder:
                if posixpath.dirname(path) in SYSTEM_DIRS:
                    files.add(path)
                else:
                    path = posixpath.dirname(path)
            found[path] = (copy.index, -1)
    explicit = any(ins.name == "WORKDIR" for ins in analysis.instructions)
    for step in analysis.runs:
        workdir = step.workdir
        if explicit and workdir and workdir not in SYSTEM_DIRS and not workdir.startswith(SCRATCH_PREFIXES):
            found[workdir] = step.position()
    result = collapse(found)
    for path in result:
        if path in SYSTEM_DIRS:
            plan.problem(
                f"the application is copied into {path}, where dopt cannot tell its files from the base image's "
                "(a WORKDIR for the application would fix that)"
            )
    return [
        AppDir(p, p in files, max(at for inner, at in found.items() if is_under(inner, p)))
        for p in result
        if p not in SYSTEM_DIRS
    ]


def copy_data_files(analysis: Analysis, plan: Plan, source_patterns: Iterable[str]) -> bool:
    """Copy the files a compiled application may read at run time: everything the build copied from
    the context except build inputs (``source-files``) and files no application reads. False when
    the context is unknown."""
    if not analysis.files.available:
        return False
    ignore = [*source_patterns, *(str(p) for p in analysis.templates.common_table("files").get("ignore", ()))]

    def has_data(rel: str) -> bool:
        for path in analysis.files.files(rel):
            parts = path.split("/")
            if not any(matches_any(part, ignore) for part in parts):
                return True
        return False

    for copy in analysis.copies:
        if not copy.from_context or copy.dest is None:
            continue
        urls = [s for s in copy.sources if "://" in s]
        for path in analysis.copy_paths(copy) if urls and len(urls) == len(copy.sources) else ():
            if not path.startswith(SCRATCH_PREFIXES) and path not in SYSTEM_DIRS:
                plan.copy(path, "downloaded by ADD in the build", (copy.index, -1))
        for rel in copy.context_sources():
            if any(ch in rel for ch in "*?["):
                entries = [(m, posixpath.basename(m)) for m in analysis.files.glob(rel)]
                folder_copy = False
            elif rel == "" or analysis.files.is_dir(rel):
                entries = [(f"{rel}/{n}" if rel else n, n) for n in analysis.files.listdir(rel)]
                folder_copy = True
            else:
                entries = [(rel, posixpath.basename(rel))]
                folder_copy = False
            for child, name in entries:
                if matches_any(name, ignore):
                    continue
                if analysis.files.is_dir(child) and not has_data(child):
                    continue
                target = join_path(copy.dest, name) if folder_copy or copy.dest_is_dir else copy.dest
                if target and not target.startswith(SCRATCH_PREFIXES):
                    plan.copy(target, f"{child} from the context, which the application may read", (copy.index, -1))
    return True


def copy_runtime_files(analysis: Analysis, plan: Plan) -> None:
    for path in analysis.templates[plan.ecosystem].list("runtime-files"):
        if not plan.covered(path):
            why = "CA certificates for TLS" if "cert" in path else "a file of the build image the program uses"
            plan.copy(path, why, BASE)


def add_to_path(analysis: Analysis, plan: Plan, folder: str, names: Iterable[str]) -> None:
    """Make programs copied into ``folder`` runnable by name, as in the build image."""
    wanted = set(names)
    runs_by_name = any(
        c.name in wanted
        for ins in analysis.instructions_named("CMD", "ENTRYPOINT", "HEALTHCHECK")
        for c in instruction_commands(ins)
    )
    if runs_by_name and folder not in BIN_DIRS:
        line = f'ENV PATH="{folder}:$PATH"'
        if line not in plan.runtime_env:
            plan.runtime_env.append(line)
            plan.notes.append(f"puts {folder} on PATH as the build image did")


NPM_CLIENTS = ("npm", "yarn", "pnpm")
_YARN_BUILTINS = frozenset(
    {"add", "install", "remove", "upgrade", "global", "cache", "config", "init", "info", "link", "pack", "publish",
     "why", "workspace", "workspaces", "list", "outdated", "bin", "dlx", "exec", "node", "set", "up", "dedupe"}
)  # fmt: skip


def npm_script_name(command: RuntimeCommand) -> str | None:
    """``npm start`` -> start, ``yarn run build`` -> build, ``pnpm dev`` -> dev (None: not a script run)."""
    name = posixpath.basename(command.name)
    args = [a for a in command.args if not a.startswith("-")]
    if name not in NPM_CLIENTS or not args:
        return None
    first = args[0]
    if first in ("start", "test", "t", "stop", "restart"):
        return {"t": "test"}.get(first, first)
    if first in ("run", "run-script", "rum", "urn"):
        return args[1] if len(args) > 1 else None
    if name in ("yarn", "pnpm") and first not in _YARN_BUILTINS:
        return first
    return None


def expand_npm_scripts(
    commands: Iterable[RuntimeCommand], scripts: Mapping[str, Any], *, depth: int = 3
) -> Iterator[RuntimeCommand]:
    """The commands, with script runs followed into package.json (pre/post scripts included)."""
    for command in commands:
        yield command
        script = npm_script_name(command)
        if script is None or depth == 0:
            continue
        bodies = []
        for name in (f"pre{script}", script, f"post{script}"):
            body = scripts.get(name)
            if isinstance(body, str):
                bodies.append((name, body))
        if script == "start" and "start" not in scripts:
            bodies.append(("start", "node server.js"))  # npm's default start script
        for name, body in bodies:
            inner = script_commands(body, f"the `{name}` script of package.json")
            yield from expand_npm_scripts(inner, scripts, depth=depth - 1)


def first_operand(command: RuntimeCommand, value_options: Iterable[str]) -> str | None:
    takes_value = set(value_options)
    skip = False
    for arg in command.args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in takes_value
            continue
        return arg
    return None
