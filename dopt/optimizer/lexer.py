"""BuildKit's word lexer: how BuildKit splits and expands words in an instruction.

BuildKit runs one small shell-like lexer for two jobs that matter to dopt:

* finding heredoc markers (``<<EOF``) in RUN/COPY/ADD lines, where it splits the line into words
  keeping quotes and escapes raw; and
* expanding ``$VAR`` / ``${VAR:-default}`` in FROM, COPY, ENV, WORKDIR... from the ARG and ENV
  values in force.

This module follows the documented behaviour of that lexer character by character, including its
quirks (an unterminated quote makes the whole line produce no words; ``${VAR}`` of an unknown
variable can be kept verbatim), because dopt must see exactly what BuildKit sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class LexError(ValueError):
    """The word cannot be processed (BuildKit reports the same failure)."""


@dataclass
class _Words:
    """Accumulates whitespace-separated words the way BuildKit's ``wordsStruct`` does."""

    words: list[str] = field(default_factory=list)
    buf: list[str] = field(default_factory=list)
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.buf.append(text)
        self.in_word = True

    def finish(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class _Scanner:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        if self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            return ch
        return ""


class Lexer:
    """Word processing with BuildKit's options.

    ``raw_quotes`` keeps quote characters in the output, ``raw_escapes`` keeps escape characters,
    ``skip_unset`` leaves references to unknown variables as written instead of expanding them to "".
    """

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self._env: Mapping[str, str] = {}
        self._scanner = _Scanner("")
        self._raw_escapes_now = raw_escapes
        self.unmatched: set[str] = set()  # variables referenced but not in the environment

    def process_words(self, text: str, env: Mapping[str, str] | None = None) -> list[str]:
        """Split ``text`` into words after expansion; raises :class:`LexError` like BuildKit."""
        return self._run(text, env)[1]

    def process_word(self, text: str, env: Mapping[str, str] | None = None) -> str:
        """Expand ``text`` as one word (quotes removed, variables substituted)."""
        return self._run(text, env)[0]

    def _run(self, text: str, env: Mapping[str, str] | None) -> tuple[str, list[str]]:
        self._env = env or {}
        self.unmatched = set()
        if not any(ch in text for ch in ("$", "<", "'", '"', self.escape)):
            return text, text.split()  # nothing to expand, unquote or unescape: the common case
        self._scanner = _Scanner(text)
        self._raw_escapes_now = self.raw_escapes
        return self._process_stop_on("", self.raw_escapes)

    def _process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        saved = self._raw_escapes_now
        self._raw_escapes_now = raw_escapes
        try:
            sc = self._scanner
            while sc.peek() != "":
                ch = sc.peek()
                if stop and ch == stop:
                    sc.next()
                    return "".join(result), words.finish()
                if ch == "$":
                    tmp = self._process_dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch == "<":
                    tmp = self._process_possible_heredoc()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                elif ch == "'":
                    tmp = self._process_single_quote()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                elif ch == '"':
                    tmp = self._process_double_quote()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                else:
                    ch = sc.next()
                    if ch == self.escape:
                        if self._raw_escapes_now:
                            words.add_raw_char(ch)
                            result.append(ch)
                        ch = sc.next()
                        if ch == "":
                            break
                        words.add_raw_char(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop:
                raise LexError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.finish()
        finally:
            self._raw_escapes_now = saved

    def _process_single_quote(self) -> str:
        sc = self._scanner
        out: list[str] = []
        ch = sc.next()
        if self.raw_quotes:
            out.append(ch)
        while True:
            ch = sc.next()
            if ch == "":
                raise LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def _process_double_quote(self) -> str:
        sc = self._scanner
        out: list[str] = []
        ch = sc.next()
        if self.raw_quotes:
            out.append(ch)
        while True:
            peek = sc.peek()
            if peek == "":
                raise LexError("unexpected end of statement while looking for matching double-quote")
            if peek == '"':
                ch = sc.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if peek == "$":
                out.append(self._process_dollar())
                continue
            ch = sc.next()
            if ch == self.escape:
                if self._raw_escapes_now:
                    out.append(ch)
                nxt = sc.peek()
                if nxt == "":
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = sc.next()
            out.append(ch)

    def _lookup(self, name: str) -> tuple[str, bool]:
        if name in self._env:
            return self._env[name], True
        self.unmatched.add(name)
        return "", False

    def _process_dollar(self) -> str:
        sc = self._scanner
        sc.next()
        if sc.peek() != "{":
            name = self._process_name()
            if not name:
                return "$"
            value, found = self._lookup(name)
            if not found and self.skip_unset:
                return "$" + name
            return value
        sc.next()
        if sc.peek() == "":
            raise LexError("syntax error: missing '}'")
        if sc.peek() in "{}:":
            raise LexError("syntax error: bad substitution")
        name = self._process_name()
        ch = sc.next()
        modifier = ch
        null_is_unset = False
        if ch == "}":
            value, found = self._lookup(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch == ":":
            null_is_unset = True
            ch = sc.next()
            modifier += ch
        if ch in ("+", "-", "?", "#", "%") and ch:
            raw = ch in "#%"
            if null_is_unset and raw:
                raise LexError(f"unsupported modifier ({modifier}) in substitution")
            try:
                word, _ = self._process_stop_on("}", raw)
            except LexError:
                if sc.peek() == "":
                    raise LexError("syntax error: missing '}'") from None
                raise
            value, found = self._lookup(name)
            if self.skip_unset and not found:
                return "${" + name + modifier + word + "}"
            return _apply_modifier(name, ch, word, value, found, null_is_unset)
        if ch == "/" and not null_is_unset:
            replace_all = sc.peek() == "/"
            if replace_all:
                sc.next()
            try:
                pattern, _ = self._process_stop_on("/", True)
                replacement, _ = self._process_stop_on("}", True)
            except LexError:
                if sc.peek() == "":
                    raise LexError("syntax error: missing '}'") from None
                raise
            value, found = self._lookup(name)
            if self.skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            regex = re.compile(shell_pattern_to_regex(pattern, greedy=True))
            return regex.sub(lambda _m: replacement, value, count=0 if replace_all else 1)
        raise LexError(f"unsupported modifier ({modifier}) in substitution")

    def _process_name(self) -> str:
        sc = self._scanner
        name: list[str] = []
        while sc.peek() != "":
            ch = sc.peek()
            if not name and ch.isdigit():
                while sc.peek() != "" and sc.peek().isdigit():
                    name.append(sc.next())
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                return sc.next()
            if not (ch.isalpha() or ch.isdigit() or ch == "_"):
                break
            name.append(sc.next())
        return "".join(name)

    def _process_possible_heredoc(self) -> str:
        sc = self._scanner
        sc.next()
        if sc.peek() != "<":
            return "<"
        sc.next()
        space: list[str] = []
        while sc.peek() in ("\t", "\r", " ") and sc.peek() != "":
            space.append(sc.next())
        return "<<" + "".join(space)


def _apply_modifier(name: str, op: str, word: str, value: str, found: bool, null_is_unset: bool) -> str:
    empty = not found or (null_is_unset and value == "")
    if op == "-":
        return word if empty else value
    if op == "+":
        return "" if empty else word
    if op == "?":
        if not found:
            raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
        if null_is_unset and value == "":
            raise LexError(f"{name}: {word or 'is not allowed to be empty'}")
        return value
    greedy = bool(word) and word[0] == op
    if greedy:
        word = word[1:]
    regex = re.compile(shell_pattern_to_regex(word, greedy=True), re.DOTALL)
    if op == "%":
        # ``%`` removes the shortest matching suffix, ``%%`` the longest.
        starts = range(len(value) + 1) if greedy else range(len(value), -1, -1)
        for start in starts:
            if regex.fullmatch(value, start):
                return value[:start]
        return value
    # ``#`` removes the shortest matching prefix, ``##`` the longest.
    ends = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for stop in ends:
        if regex.fullmatch(value, 0, stop):
            return value[stop:]
    return value


def shell_pattern_to_regex(pattern: str, *, greedy: bool) -> str:
    """Translate a shell glob (``*``, ``?``, ``[...]``) into a Python regular expression."""
    out: list[str] = []
    i = 0
    star = ".*" if greedy else ".*?"
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)
