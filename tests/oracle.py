"""BuildKit's parser (PyPI ``dockerfile``) as the oracle, and dopt's tree in the same shape."""

from __future__ import annotations

import json
import re

import dockerfile

from dopt.optimizer.syntax import Document, Instruction


def _values(ins: Instruction) -> tuple[str, ...]:
    if ins.sub is not None:
        return ("",)  # ONBUILD inside ONBUILD: the oracle flattens the node that holds the child
    # The oracle's BuildKit predates the separator node of ENV/LABEL (key, value, sep): drop it.
    if ins.keyword.lower() in ("env", "label"):
        return tuple(v for i, v in enumerate(ins.values) if i % 3 != 2)
    return ins.values


def _original(ins: Instruction) -> str:
    text = ins.logical
    if ins.heredocs and ins.sub is None:
        text += "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
    return text


def dopt_view(doc: Document) -> list[tuple]:
    """dopt's instructions as (keyword, sub keyword, json, original, lines, flags, values, heredocs)."""
    rows = []
    for ins in doc.instructions:
        inner = ins.sub if ins.sub is not None else ins
        rows.append(
            (
                ins.keyword,
                ins.sub.keyword if ins.sub is not None else None,
                inner.json,
                _original(ins),
                ins.line,
                ins.end_line,
                tuple(f.text for f in ins.flags),
                # The oracle passes values through C strings, which end at a NUL character.
                tuple(v.split("\x00", 1)[0] for v in _values(inner)),
                # It reports heredocs of the instruction inside ONBUILD nowhere; line ranges still cover them.
                tuple((h.name, h.file_descriptor, h.content) for h in ins.heredocs if ins.sub is None),
            )
        )
    return rows


def buildkit_view(text: str) -> list[tuple]:
    """What BuildKit parses from ``text``, in :func:`dopt_view`'s shape; raises on rejection."""
    return [
        (
            c.cmd,
            c.sub_cmd,
            c.json,
            c.original,
            c.start_line,
            c.end_line,
            tuple(c.flags),
            tuple(c.value),
            tuple((h.name, h.file_descriptor, h.content) for h in c.heredocs),
        )
        for c in dockerfile.parse_string(text)
    ]


_HEREDOC_WITH_BLANK = re.compile(r"<<-?[ \t]")


def _json_prefix_with_trailing_text(args: str) -> bool:
    if not args.startswith("["):
        return False
    try:
        _, end = json.JSONDecoder().raw_decode(args)
    except ValueError:
        return False
    return bool(args[end:].strip())


def known_difference(text: str, doc: Document | None) -> str | None:
    """Where the oracle's BuildKit (before mid-2024/0.22) reads ``text`` differently from current BuildKit."""
    if _HEREDOC_WITH_BLANK.search(text):
        return "'<< NAME' (blank after <<) is a heredoc only in BuildKit >= 0.22"
    for ins in doc.instructions if doc is not None else ():
        node = ins.sub or ins
        json_part = node.args.split(None, 1)[-1] if node.name == "HEALTHCHECK" and node.args else node.args
        if _json_prefix_with_trailing_text(json_part):
            return "JSON array followed by text: JSON form in the oracle's BuildKit, shell form in current BuildKit"
    return None
