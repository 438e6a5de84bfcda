"""Source offsets <-> LSP positions.

dopt reports places as offsets into the Python string (code points) and as 1-based line and
column counted the way BuildKit reads a file (lines end at ``\\n`` only). An LSP client counts
lines at ``\\n``, ``\\r\\n`` *and* a lone ``\\r``, and characters in the code units of the
negotiated position encoding (UTF-16 unless the client offers another one). Converting through
offsets with the client's own line breaks keeps ranges right for non-ASCII text, characters
outside the Basic Multilingual Plane (two UTF-16 units each) and CRLF files alike.

This module does not import pygls or lsprotocol, so it is cheap and can be tested on its own.
"""

from __future__ import annotations

import bisect
import re

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def code_units(text: str, encoding: str = UTF16) -> int:
    """Length of ``text`` in the code units of ``encoding`` (lone surrogates count as one unit each)."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class LineIndex:
    """Converts between offsets into one text and (line, character) pairs in one position encoding."""

    def __init__(self, text: str, encoding: str = UTF16) -> None:
        self.text = text
        self.encoding = str(encoding)
        self._starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def line_end(self, line: int) -> int:
        """Offset where the content of 0-based ``line`` ends, before its line break."""
        if line + 1 >= len(self._starts):
            return len(self.text)
        end = self._starts[line + 1]
        return end - 2 if self.text.startswith("\r\n", end - 2) else end - 1

    def position(self, offset: int) -> tuple[int, int]:
        """0-based (line, character) of ``offset``; an offset inside a line break maps to the line's end."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        end = min(offset, self.line_end(line))
        return line, code_units(self.text[start:end], self.encoding)

    def offset(self, line: int, character: int) -> int:
        """Offset of a 0-based LSP position; positions past a line's end clamp to it (as the spec asks)."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self.text)
        pos, end = self._starts[line], self.line_end(line)
        if self.encoding == UTF32:
            return min(pos + max(character, 0), end)
        units = 0
        while pos < end:
            width = code_units(self.text[pos], self.encoding)
            if units + width > character:
                break
            units += width
            pos += 1
        return pos

    def end_position(self) -> tuple[int, int]:
        """Position just after the last character: the end of a whole-document range."""
        return self.position(len(self.text))


def dopt_offset(text: str, line: int, column: int) -> int:
    """Offset of dopt's 1-based (line, column), where lines end at ``\\n`` only, as BuildKit counts them.

    Out-of-range values are clamped to the text, so an error position always lands somewhere visible.
    """
    start = 0
    for _ in range(max(line, 1) - 1):
        nl = text.find("\n", start)
        if nl == -1:
            break
        start = nl + 1
    nl = text.find("\n", start)
    end = len(text) if nl == -1 else nl
    if end > start and text[end - 1] == "\r":
        end -= 1
    return min(start + max(column, 1) - 1, end)
