"""Settings: ``[tool.dopt]`` in the nearest ``pyproject.toml``, or a ``dopt.toml``, plus the command line.

Recognised keys (all optional)::

    [tool.dopt]
    select = ["DO", "DL3059"]      # codes, code prefixes, hadolint codes or rule names; "ALL"
    ignore = ["DO100"]
    extend-select = ["DO210"]      # added to the default selection
    unsafe-fixes = false
    per-file-ignores = { "docker/dev.Dockerfile" = ["DO2"] }

    [tool.dopt.rules]              # options read by individual rules
    merge-runs = true

A ``dopt.toml`` holds the same keys at its top level. The file nearest to the checked Dockerfile
wins; command-line options override it.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopt.optimizer.rules import Rule

_KNOWN_KEYS = {"select", "ignore", "extend-select", "unsafe-fixes", "per-file-ignores", "rules"}


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] | None = None  # None: the default rule set
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule_options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the file these settings came from
    root: Path | None = None  # where per-file-ignores patterns are relative to

    def merged(
        self,
        *,
        select: Sequence[str] | None = None,
        ignore: Sequence[str] | None = None,
        extend_select: Sequence[str] | None = None,
        unsafe_fixes: bool | None = None,
        rule_options: dict[str, Any] | None = None,
    ) -> Settings:
        # A selection on the command line replaces the configured one, ignores included (as in ruff).
        return Settings(
            select=tuple(select) if select else self.select,
            extend_select=self.extend_select + tuple(extend_select or ()),
            ignore=(() if select else self.ignore) + tuple(ignore or ()),
            unsafe_fixes=self.unsafe_fixes if unsafe_fixes is None else unsafe_fixes,
            per_file_ignores=self.per_file_ignores,
            rule_options={**self.rule_options, **(rule_options or {})},
            source=self.source,
            root=self.root,
        )

    def rules_for(self, rules: Iterable[Rule], path: str | None = None) -> list[Rule]:
        """The rules selected for ``path`` (per-file ignores applied)."""
        ignore = list(self.ignore)
        if path and self.per_file_ignores:
            rel = _relative(Path(path), self.root)
            for pattern, codes in self.per_file_ignores.items():
                if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(Path(path).name, pattern):
                    ignore.extend(codes)
        chosen = []
        for rule in rules:
            if self.select is None:
                wanted = rule.default_enabled or matches(rule, self.extend_select)
            else:
                wanted = matches(rule, self.select) or matches(rule, self.extend_select)
            if wanted and not matches(rule, ignore):
                chosen.append(rule)
        return chosen


def _relative(path: Path, root: Path | None) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() if root else path.as_posix()
    except ValueError:
        return path.as_posix()


def matches(rule: Rule, selectors: Iterable[str]) -> bool:
    """Whether ``rule`` is named by any selector: ALL, a code, a code prefix, a hadolint code, a name."""
    for raw in selectors:
        sel = raw.strip()
        if not sel:
            continue
        up = sel.upper()
        if up == "ALL" or sel == rule.name:
            return True
        if any(code.startswith(up) for code in rule.codes()):
            return True
    return False


def validate_selectors(selectors: Iterable[str], rules: Iterable[Rule]) -> list[str]:
    """Selectors that name no rule at all (likely typos)."""
    rules = list(rules)
    return [s for s in selectors if s.strip() and not any(matches(r, [s]) for r in rules)]


def find_config(start: Path) -> Path | None:
    """The nearest ``dopt.toml``, or ``pyproject.toml`` with a ``[tool.dopt]`` table, from ``start`` up."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder.resolve(), *folder.resolve().parents):
        own = candidate / "dopt.toml"
        if own.is_file():
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "dopt" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


def _strings(path: Path, key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{path}: '{key}' must be a list of rule codes (strings)")


def load_settings(path: Path) -> Settings:
    """Settings from a ``dopt.toml`` or ``pyproject.toml``; raises :class:`ConfigError` when invalid."""
    data = _read(path)
    table = data.get("tool", {}).get("dopt", {}) if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.dopt] must be a table")
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting '{sorted(unknown)[0]}' (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    unsafe = table.get("unsafe-fixes", False)
    if not isinstance(unsafe, bool):
        raise ConfigError(f"{path}: 'unsafe-fixes' must be true or false")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{path}: 'per-file-ignores' must be a table of pattern = [codes]")
    options = table.get("rules", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{path}: [rules] must be a table")
    return Settings(
        select=_strings(path, "select", table["select"]) if "select" in table else None,
        extend_select=_strings(path, "extend-select", table.get("extend-select", [])),
        ignore=_strings(path, "ignore", table.get("ignore", [])),
        unsafe_fixes=unsafe,
        per_file_ignores={k: _strings(path, f"per-file-ignores.{k}", v) for k, v in per_file.items()},
        rule_options=options,
        source=path,
        root=path.parent,
    )


def settings_for(target: Path, explicit: Path | None = None) -> Settings:
    """Settings for a Dockerfile (or folder): the explicit config file, else the nearest one."""
    config = explicit or find_config(target)
    return load_settings(config) if config else Settings()
