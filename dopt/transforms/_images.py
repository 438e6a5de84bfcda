"""Machinery shared by the base-image rules (DO400-DO449).

* :func:`base_images`: the external images a Dockerfile builds on, one per ``FROM`` of a stage
  that is not built on an earlier stage nor on ``scratch``, with where the image is written and,
  for ``FROM ${BASE}``, the global ``ARG`` default that decides it;
* the registry answers the command line looked up before the rules ran (the rules never ask a
  registry themselves; see :mod:`dopt.registry.pinning`);
* the data file ``dopt/data/base_images.toml``: end-of-life releases and their successors,
  floating tag words, -slim variants and runtime images.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from dopt.optimizer.rules import Context, Edit
from dopt.optimizer.semantic import Stage
from dopt.optimizer.shell import parse_shell
from dopt.optimizer.syntax import Instruction
from dopt.registry.pinning import PIN, RESOLUTIONS, STALE, UPDATES, Lookup, policy_from_options
from dopt.registry.reference import DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX, Reference, TagVersion
from dopt.registry.resolve import PinPolicy, Resolution

_WHOLE_ARG = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_PLAIN_VALUE = re.compile(r"[^\s\"'$\\`]+")

STALE_NOTE = (
    "; the answer came from an old cache entry (offline) and the tag may have moved since, so the fix is unsafe"
)
PIN_HINT = '`dopt fix --pin both` (or `pin = "both"` in [tool.dopt.rules]) looks it up in its registry and pins it'


# ---------------------------------------------------------------------------------------------
# Where each base image is written


@dataclass(frozen=True)
class ArgDefault:
    """A global ``ARG NAME=value`` whose value is a whole ``FROM`` reference."""

    name: str
    ins: Instruction
    start: int  # source span of the value
    end: int


@dataclass(frozen=True)
class BaseImage:
    """One stage's external base image."""

    stage: Stage
    ins: Instruction  # the FROM instruction
    word: str  # the image as written (variables unexpanded)
    word_span: tuple[int, int] | None  # source span of ``word`` when it is written on one line
    ref: Reference | None  # None when ARGs without default decide it, or it is not a valid reference
    arg: ArgDefault | None  # set when the whole word is ``${NAME}`` and its default may be rewritten

    @property
    def text(self) -> str:
        """The reference as the build sees it by default (ARG defaults applied); "" if unknown."""
        return self.stage.image

    @property
    def from_arg(self) -> bool:
        return "$" in self.word

    @property
    def unknown(self) -> bool:
        """The FROM line uses a build argument that has no default: the image is not known."""
        return not self.stage.image_resolved

    @property
    def span(self) -> tuple[int, int]:
        if self.word_span is not None:
            return self.word_span
        return self.ins.keyword_start, self.ins.args_end

    @property
    def edit_span(self) -> tuple[int, int]:
        """Where a finding whose fix rewrites the image stands: the ARG default for ``FROM ${BASE}``."""
        return (self.arg.start, self.arg.end) if self.arg is not None else self.span

    def edit(self, new_text: str) -> Edit | None:
        """The edit that makes the build use ``new_text`` by default, if one can be made.

        A literal FROM word is replaced; for ``FROM ${BASE}`` the global default of ``BASE`` is
        (a ``--build-arg BASE=...`` still wins, as before). Other ARG uses cannot be rewritten.
        """
        if not self.from_arg and self.word_span is not None:
            return Edit(self.word_span[0], self.word_span[1], new_text)
        if self.arg is not None:
            return Edit(self.arg.start, self.arg.end, new_text)
        return None

    @property
    def where(self) -> str:
        """How the message names the image: the reference, and the ARG it came from."""
        if not self.from_arg:
            return self.word
        if self.unknown:
            return self.word
        return f"{self.text} (from {self.word} with its ARG default)"


class SharedDefaults:
    """FROMs whose image is the same ARG default get one finding, at the first of them: the fix
    edits that default once."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def first(self, base: BaseImage) -> bool:
        if base.arg is None:
            return True
        key = id(base.arg.ins)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _word_span(ctx: Context, ins: Instruction) -> tuple[int, int] | None:
    match = re.match(r"\S+", ins.args)
    if match is None:
        return None
    start, end = ins.source_range(ins.args_start, ins.args_start + match.end())
    if ctx.document.source[start:end] != match.group(0):
        return None  # split by a line continuation
    return start, end


def _arg_default(ctx: Context, name: str) -> ArgDefault | None:
    """The global ARG default that a whole-word ``FROM ${name}`` takes, when rewriting it is safe.

    Safe when every use of the ARG is a whole FROM word: no stage redeclares it (so no RUN, LABEL
    or ENV sees it) and no other ARG default or FROM word embeds it.
    """
    doc = ctx.document
    declaration: ArgDefault | None = None
    in_stages = False
    pattern = re.compile(r"\$(?:\{" + re.escape(name) + r"[}:]|" + re.escape(name) + r"(?![A-Za-z0-9_]))")
    for ins in doc.instructions:
        if ins.name == "FROM":
            in_stages = True
            word = ins.values[0] if ins.values else ""
            whole = _WHOLE_ARG.fullmatch(word)
            if pattern.search(word) and not (whole and (whole.group("braced") or whole.group("bare")) == name):
                return None
            continue
        if ins.name != "ARG":
            continue
        for raw in ins.values:
            key, sep, value = raw.partition("=")
            if key != name:
                if sep and pattern.search(value):
                    return None
                continue
            if in_stages:
                return None  # a stage sees the ARG: changing its default changes more than FROM
            declaration = None
            if not sep or not _PLAIN_VALUE.fullmatch(value):
                continue
            found = re.search(r"(?:^|(?<=\s))" + re.escape(f"{name}={value}") + r"(?=\s|$)", ins.args)
            if found is None:
                continue
            lo = found.start() + len(name) + 1
            start, end = ins.source_range(ins.args_start + lo, ins.args_start + found.end())
            if doc.source[start:end] == value:
                declaration = ArgDefault(name, ins, start, end)
    return declaration


def base_images(ctx: Context) -> tuple[BaseImage, ...]:
    """The external base image of every stage (not ``scratch``, not an earlier stage)."""
    return ctx.shared(_base_images)


def _base_images(ctx: Context) -> tuple[BaseImage, ...]:
    found: list[BaseImage] = []
    for stage in ctx.model.stages:
        ins = stage.from_instruction
        if stage.parent is not None or stage.is_scratch or not ins.values:
            continue
        word = ins.values[0]
        ref = stage.reference
        if stage.image_resolved and ref is None:
            continue  # not a valid reference: the syntax rules report it
        arg = None
        whole = _WHOLE_ARG.fullmatch(word)
        if whole and stage.image_resolved:
            arg = _arg_default(ctx, whole.group("braced") or whole.group("bare"))
        found.append(BaseImage(stage, ins, word, _word_span(ctx, ins), ref, arg))
    return tuple(found)


# ---------------------------------------------------------------------------------------------
# Registry answers and the pinning policy


@dataclass(frozen=True)
class Lookups:
    """The registry answers in the rules' options (``looked_up`` False: no look-up was made)."""

    looked_up: bool
    resolutions: Mapping[str, Lookup]
    updates: Mapping[str, Lookup]
    stale: frozenset[str]

    def key(self, base: BaseImage) -> str:
        """The look-up key for ``base``: its text, or the reference that an earlier round pinned to it.

        A fix made in this run (``python:3.11.4-slim`` pinned to ``python:3.11.4-slim@sha256:...``)
        keeps the answers of the reference it replaced, so later rounds (the outdated-pin rule)
        still see them.
        """
        if base.text in self.resolutions:
            return base.text
        for key, found in self.resolutions.items():
            if isinstance(found, Resolution) and found.text == base.text:
                return key
        return base.text

    def resolution(self, base: BaseImage) -> Lookup | None:
        return self.resolutions.get(self.key(base))

    def answer(self, base: BaseImage, not_asked: str) -> Resolution | str:
        """The registry's resolution of ``base``, or why there is none (``not_asked``: no look-up made)."""
        if not self.looked_up:
            return not_asked
        found = self.resolution(base)
        if found is None:
            return "it was not looked up"
        if not isinstance(found, Resolution):
            return describe_failure(found)
        return found

    def update(self, base: BaseImage) -> Lookup | None:
        return self.updates.get(self.key(base))


def lookups(ctx: Context) -> Lookups:
    options = ctx.options
    resolutions = options.get(RESOLUTIONS)
    updates = options.get(UPDATES)
    return Lookups(
        looked_up=resolutions is not None,
        resolutions=resolutions if isinstance(resolutions, Mapping) else {},
        updates=updates if isinstance(updates, Mapping) else {},
        stale=frozenset(options.get(STALE) or ()),
    )


def policy(ctx: Context) -> PinPolicy:
    """The user's pinning policy; the default (both, patch) when unset or invalid (the CLI reports that)."""
    try:
        return policy_from_options(ctx.options)
    except ValueError:
        return PinPolicy()


def policy_configured(ctx: Context) -> bool:
    return ctx.options.get(PIN) is not None


def explanation(found: Resolution) -> str:
    """The resolver's explanation, without its closing remark for a reference it left unchanged."""
    return found.explanation.replace("; already pinned; unchanged", "")


def describe_failure(error: BaseException) -> str:
    return f"the registry look-up failed, so nothing was changed: {error}"


# ---------------------------------------------------------------------------------------------
# Tags


def is_date_like(parsed: TagVersion) -> bool:
    """A one-part "version" of four or more digits is a date or build number, not a major version."""
    return parsed.specificity == 1 and parsed.version[0] >= 1000


def is_floating_word_tag(tag: str) -> bool:
    """Whether ``tag`` is made only of words that name a moving target (``lts-alpine``, ``bookworm-slim``)."""
    words = set(data()["tags"]["floating"]) | set(data()["codenames"])
    return all(part in words for part in tag.lower().split("-"))


def short_name(ref: Reference) -> str:
    """``python`` for Docker Hub's official images, the full name (``ghcr.io/org/app``) otherwise."""
    if ref.domain == DEFAULT_DOMAIN and ref.path.startswith(OFFICIAL_REPO_PREFIX):
        rest = ref.path.removeprefix(OFFICIAL_REPO_PREFIX)
        if "/" not in rest:
            return rest
    return ref.name


def version_text(parsed: TagVersion) -> str:
    return parsed.prefix + ".".join(str(part) for part in parsed.version)


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# ---------------------------------------------------------------------------------------------
# Data


@cache
def data() -> dict[str, Any]:
    """``dopt/data/base_images.toml``, parsed once."""
    with resources.files("dopt").joinpath("data/base_images.toml").open("rb") as handle:
        return tomllib.load(handle)


def today(ctx: Context) -> datetime.date:
    """The date end-of-life entries are compared with (option ``today`` lets tests fix it)."""
    value = ctx.options.get("today")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    return datetime.date.today()


def glob_matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


# ---------------------------------------------------------------------------------------------
# What a stage runs


@dataclass(frozen=True)
class StageActivity:
    """Programs a stage's RUN instructions call and packages they install (None: scripts unreadable)."""

    programs: frozenset[str]
    installed: frozenset[str]
    readable: bool


_INSTALLERS = {("apt-get", "install"), ("apt", "install"), ("apk", "add"), ("yum", "install"), ("dnf", "install")}


def _scripts(ins: Instruction) -> Iterator[str]:
    if ins.heredocs:
        for heredoc in ins.heredocs:
            yield heredoc.content
    if ins.args:
        yield ins.args


def stage_activity(stage: Stage) -> StageActivity:
    programs: set[str] = set()
    installed: set[str] = set()
    readable = True
    for ins in stage.instructions:
        if ins.sub is not None or ins.name != "RUN":
            continue
        if ins.json:
            if ins.values:
                programs.add(ins.values[0].rsplit("/", 1)[-1])
            continue
        for script in _scripts(ins):
            shell = parse_shell(script)
            if shell.has_errors:
                readable = False
            for command in shell.commands():
                invocation = command.invocation()
                if invocation is None:
                    if command.name is not None and command.name.value:
                        programs.add(command.name.value.rsplit("/", 1)[-1])
                    continue
                programs.add(invocation.program)
                programs.update(invocation.wrappers)
                if (invocation.program, invocation.subcommand) in _INSTALLERS:
                    installed.update(w.value for w in invocation.operands if w.value)
    return StageActivity(frozenset(programs), frozenset(installed), readable)


def final_image_stages(ctx: Context) -> list[Stage]:
    """The final stage and the stages it is built on (what the shipped image is made of)."""
    chain: list[Stage] = []
    stage = ctx.model.final_stage
    while stage is not None:
        chain.append(stage)
        stage = stage.parent
    return chain
