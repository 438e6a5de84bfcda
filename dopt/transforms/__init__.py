"""The transforms, one rule per module. Each module's docstring is the rule's documentation.

Every public module in this package is a rule module: it defines exactly the :class:`Rule`
subclasses it documents. Modules whose names start with ``_`` hold machinery shared by rules.
"""

from __future__ import annotations

import pkgutil
from functools import cache
from importlib import import_module

from dopt.optimizer.rules import Rule


@cache
def _rule_classes() -> tuple[type[Rule], ...]:
    classes: list[type[Rule]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = import_module(f"{__name__}.{info.name}")
        classes.extend(
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Rule) and obj.__module__ == module.__name__
        )
    return tuple(sorted(classes, key=lambda cls: cls.code))


def all_rules() -> list[Rule]:
    """One instance of every rule, in code order."""
    return [cls() for cls in _rule_classes()]
