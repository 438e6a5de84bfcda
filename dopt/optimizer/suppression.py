"""Inline suppressions: ``# dopt: ignore=CODE[,CODE]`` and hadolint's ``# hadolint ignore=DL3008``.

A suppression comment stands in the block of comment lines directly above an instruction and
silences those codes for findings on that instruction, as hadolint does, so that files already
annotated for hadolint keep their meaning. ``# dopt: ignore`` without codes silences every rule
on the instruction. ``# dopt: ignore-file=CODE`` anywhere silences a code in the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dopt.optimizer.rules import Finding, Rule
from dopt.optimizer.syntax import Document, Instruction, Trivia

_INLINE = re.compile(r"#\s*(dopt|hadolint)\s*:?\s*ignore(?:\s*=\s*([A-Za-z0-9_, -]+))?\s*$", re.IGNORECASE)
_FILE = re.compile(r"#\s*dopt\s*:\s*ignore-file\s*=\s*([A-Za-z0-9_, -]+)\s*$", re.IGNORECASE)
ALL = "*"


def _codes(text: str | None) -> set[str]:
    if text is None:
        return {ALL}
    return {c.strip().upper() for c in text.split(",") if c.strip()}


@dataclass(frozen=True)
class Suppressions:
    by_instruction: dict[int, set[str]]  # Instruction.start -> codes
    whole_file: set[str]
    instructions: tuple[Instruction, ...]

    @classmethod
    def of(cls, doc: Document) -> Suppressions:
        by_instruction: dict[int, set[str]] = {}
        whole_file: set[str] = set()
        block: set[str] = set()
        for node in doc.nodes:
            if isinstance(node, Trivia):
                text = doc.source[node.start : node.end].strip()
                if node.kind == "comment":
                    if match := _FILE.match(text):
                        whole_file |= _codes(match.group(1))
                    elif match := _INLINE.match(text):
                        block |= _codes(match.group(2))
                    continue
                block = set()
                continue
            if block:
                by_instruction[node.start] = block
            block = set()
        return cls(by_instruction, whole_file, doc.instructions)

    def suppresses(self, rule: Rule, finding: Finding) -> bool:
        codes = set(rule.codes())
        if codes & self.whole_file:
            return True
        for ins in self.instructions:
            if ins.start <= finding.start < ins.end or (finding.start == ins.end == finding.end):
                wanted = self.by_instruction.get(ins.start, set())
                return ALL in wanted or bool(codes & wanted)
        return False
