"""The transforms, one rule per module. Each module's docstring is the rule's documentation."""

from __future__ import annotations

from importlib import import_module

from dopt.optimizer.rules import Rule

# module name -> class name; imported on demand so `dopt fix -` starts fast.
_RULES = {
    "unknown_instruction": "UnknownInstruction",
    "exec_form_json": "ExecFormNotJson",
    "keyword_case": "KeywordCase",
    "maintainer": "MaintainerToLabel",
}


def all_rules() -> list[Rule]:
    """One instance of every rule, in code order."""
    rules = [getattr(import_module(f"dopt.transforms.{mod}"), cls)() for mod, cls in _RULES.items()]
    return sorted(rules, key=lambda r: r.code)
