"""What the instructions mean together: build stages, ARG scoping, and the context of each instruction.

BuildKit's rules, as the Dockerfile reference states them:

* ARGs before the first FROM are global: only FROM lines see them, and a stage sees one only
  after redeclaring it (``ARG NAME``), taking the global default when it gives none.
* Inside a stage, ARG and ENV values are visible to later instructions; ENV wins over ARG of the
  same name. A stage built ``FROM`` an earlier stage inherits that stage's ENV, WORKDIR, USER and
  SHELL; one built from an external image inherits settings dopt cannot see (``None`` here).
* Variables are expanded in ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME and
  WORKDIR; RUN/CMD/ENTRYPOINT leave ``$VAR`` to the shell.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from dopt.optimizer.lexer import Lexer, LexError
from dopt.optimizer.syntax import Document, Instruction

if TYPE_CHECKING:
    from dopt.registry.reference import Reference

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class Scope:
    """The build context in force *before* an instruction runs."""

    env: Mapping[str, str]  # ENV set in this Dockerfile (this stage and the stages it builds on)
    args: Mapping[str, str | None]  # ARGs declared in the stage (None: no default value)
    workdir: str | None  # None: whatever the external base image sets
    user: str | None
    shell: tuple[str, ...]

    def variables(self) -> dict[str, str]:
        """Values BuildKit would substitute, where known (ENV overrides ARG)."""
        known = {k: v for k, v in self.args.items() if v is not None}
        known.update(self.env)
        return known


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # the AS name, lower-cased as BuildKit compares it
    from_instruction: Instruction
    image: str  # the base as written after ARG expansion ("" when it cannot be resolved)
    image_resolved: bool  # False when the FROM line uses an ARG without a known value
    parent: Stage | None  # the earlier stage it is built FROM, if any
    instructions: tuple[Instruction, ...]  # everything after the FROM up to the next FROM
    platform: str | None = None

    @property
    def is_scratch(self) -> bool:
        return self.image.lower() == "scratch"

    @cached_property
    def reference(self) -> Reference | None:
        """The base image parsed into registry / repository / tag / digest.

        None for ``scratch``, a stage built on an earlier stage, or a FROM whose ARGs have no
        known value or that is not a valid reference.
        """
        if not self.image_resolved or self.is_scratch or self.parent is not None:
            return None
        from dopt.registry.reference import InvalidReferenceError, parse_reference

        try:
            return parse_reference(self.image)
        except InvalidReferenceError:
            return None


@dataclass(frozen=True)
class Model:
    document: Document
    global_args: Mapping[str, str | None]
    stages: tuple[Stage, ...]
    scopes: Mapping[int, Scope] = field(repr=False)  # keyed by Instruction.start

    def scope_of(self, ins: Instruction) -> Scope:
        return self.scopes[ins.start]

    def stage_of(self, ins: Instruction) -> Stage | None:
        return self._stage_by_instruction.get(ins)

    @cached_property
    def _stage_by_instruction(self) -> dict[Instruction, Stage]:
        # Instructions compare by identity, so this finds the very instruction, not an equal one.
        found: dict[Instruction, Stage] = {}
        for stage in self.stages:
            found[stage.from_instruction] = stage
            found.update(dict.fromkeys(stage.instructions, stage))
        return found

    def stage_named(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.name == name.lower() or str(stage.index) == name:
                return stage
        return None

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def is_referenced(self, stage: Stage) -> bool:
        """Whether a later stage copies from or builds on ``stage`` (it matters beyond its own build)."""
        keys = {str(stage.index)} | ({stage.name} if stage.name else set())
        for other in self.stages[stage.index + 1 :]:
            if other.parent is stage:
                return True
            for ins in other.instructions:
                for flag in ins.flags:
                    if flag.name == "from" and (flag.value or "").lower() in keys:
                        return True
                    if flag.name == "mount" and any(
                        part.lower() in {f"from={k}" for k in keys} for part in (flag.value or "").split(",")
                    ):
                        return True
        return False


def expand(text: str, variables: Mapping[str, str], escape: str = "\\") -> str | None:
    """Substitute variables as BuildKit does; None when the result depends on an unknown value."""
    lexer = Lexer(escape)
    try:
        value = lexer.process_word(text, variables)
    except LexError:
        return None
    return None if lexer.unmatched else value


def build_model(doc: Document) -> Model:
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    scopes: dict[int, Scope] = {}
    escape = doc.escape
    current: dict[str, object] | None = None
    pending: list[Instruction] = []
    stage_scope: Scope | None = None
    stage_start_scopes: dict[int, Scope] = {}

    def close_stage() -> None:
        if current is not None:
            stages.append(Stage(instructions=tuple(pending), **current))  # type: ignore[arg-type]

    for ins in doc.instructions:
        kind = ins.name
        if kind == "FROM":
            close_stage()
            pending = []
            known = {k: v for k, v in global_args.items() if v is not None}
            words = ins.values
            image_text = words[0] if words else ""
            image = expand(image_text, known, escape)
            name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            parent = next((s for s in stages if s.name and image and s.name == image.lower()), None)
            platform = next((f.value for f in ins.flags if f.name == "platform"), None)
            current = {
                "index": len(stages), "name": name, "from_instruction": ins, "image": image or "",
                "image_resolved": image is not None, "parent": parent, "platform": platform,
            }  # fmt: skip
            base_scope = stage_start_scopes.get(parent.index) if parent else None
            scopes[ins.start] = Scope({}, dict(global_args), None, None, DEFAULT_SHELL)
            stage_scope = Scope(
                env=dict(base_scope.env) if base_scope else {},
                args={},
                workdir=base_scope.workdir if base_scope else None,
                user=base_scope.user if base_scope else None,
                shell=base_scope.shell if base_scope else DEFAULT_SHELL,
            )
            continue
        if current is None or stage_scope is None:
            scopes[ins.start] = Scope({}, dict(global_args), None, None, DEFAULT_SHELL)
            if kind == "ARG":
                for word in ins.values:
                    key, sep, value = word.partition("=")
                    global_args[key] = expand(value, {}, escape) if sep else None
            continue
        scopes[ins.start] = stage_scope
        pending.append(ins)
        stage_scope = _advance(stage_scope, ins, global_args, escape)
        stage_start_scopes[current["index"]] = stage_scope  # type: ignore[index]
    close_stage()
    return Model(doc, global_args, tuple(stages), scopes)


def _advance(scope: Scope, ins: Instruction, global_args: Mapping[str, str | None], escape: str) -> Scope:
    kind = ins.name
    variables = scope.variables()
    if kind == "ARG":
        args = dict(scope.args)
        for word in ins.values:
            key, sep, value = word.partition("=")
            if sep:
                args[key] = expand(value, variables, escape)
            else:
                args[key] = global_args.get(key)
        return Scope(scope.env, args, scope.workdir, scope.user, scope.shell)
    if kind == "ENV":
        env = dict(scope.env)
        values = ins.values
        for i in range(0, len(values) - 2, 3):
            key, value = values[i], values[i + 1]
            expanded = expand(value, variables, escape)
            if expanded is not None:
                env[key] = expanded
            else:
                env.pop(key, None)
            variables = {**variables, **env}
        return Scope(env, scope.args, scope.workdir, scope.user, scope.shell)
    if kind == "WORKDIR" and ins.values:
        path = expand(ins.values[0], variables, escape)
        if path is None:
            workdir = None
        elif path.startswith("/"):
            workdir = posixpath.normpath(path)
        elif scope.workdir is None:
            workdir = None  # relative to a base image's WORKDIR that dopt cannot see
        else:
            workdir = posixpath.normpath(posixpath.join(scope.workdir, path))
        return Scope(scope.env, scope.args, workdir, scope.user, scope.shell)
    if kind == "USER" and ins.values:
        return Scope(
            scope.env, scope.args, scope.workdir, expand(ins.values[0], variables, escape), scope.shell
        )
    if kind == "SHELL" and ins.json:
        return Scope(scope.env, scope.args, scope.workdir, scope.user, tuple(ins.values))
    return scope


def env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    """(name, raw value) pairs of an ENV or LABEL instruction."""
    return [(ins.values[i], ins.values[i + 1]) for i in range(0, len(ins.values) - 2, 3)]


def arg_pairs(ins: Instruction) -> list[tuple[str, str | None]]:
    """(name, default or None) of an ARG instruction."""
    out: list[tuple[str, str | None]] = []
    for word in ins.values:
        key, sep, value = word.partition("=")
        out.append((key, value if sep else None))
    return out
