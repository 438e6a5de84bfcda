"""A lossless Dockerfile syntax tree that reads files exactly as BuildKit does.

The parser follows BuildKit's own algorithm line by line (parser directives, escape characters,
line continuations with comment and blank lines inside them, heredocs, flags, JSON form), and in
addition keeps where every piece came from in the source text. Every node is immutable and
points into ``Document.source``; the nodes together cover the whole text, so printing the tree
gives the file back byte for byte. Transforms never build text from nodes: they replace precise
source ranges (see :mod:`dopt.optimizer.edits`) and the result is parsed again.
"""

from __future__ import annotations

import bisect
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from dopt.optimizer.lexer import Lexer, LexError

# BuildKit's reWhitespace: the separators between words of FROM, EXPOSE, COPY, ...
_WORD_SEPARATOR = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
# bufio.Scanner's limit: a longer physical line is an error in BuildKit.
_MAX_LINE_BYTES = 64 * 1024

KNOWN_INSTRUCTIONS = frozenset(
    {
        "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
        "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
    }
)  # fmt: skip


class DockerfileSyntaxError(ValueError):
    """The text is not a Dockerfile BuildKit would accept; carries a 1-based position."""

    def __init__(self, message: str, line: int, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"

    def __reduce__(self) -> tuple[type[DockerfileSyntaxError], tuple[str, int, int]]:
        # Batches run in worker processes, which send errors back pickled.
        return (type(self), (self.message, self.line, self.column))


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of logical-line characters copied from one contiguous stretch of source."""

    logical_start: int
    source_start: int
    length: int


@dataclass(frozen=True, slots=True)
class Flag:
    """A ``--name=value`` flag before an instruction's arguments (``--mount=...``, ``--from=...``)."""

    text: str  # the flag as BuildKit reads it, quotes and escapes resolved
    start: int  # source offsets of the flag as written
    end: int

    @property
    def name(self) -> str:
        return self.text[2:].split("=", 1)[0]

    @property
    def value(self) -> str | None:
        parts = self.text.split("=", 1)
        return parts[1] if len(parts) == 2 else None


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A heredoc attached to RUN/COPY/ADD: ``<<EOF`` on the instruction line, body on the lines after."""

    name: str
    chomp: bool  # ``<<-``: leading tabs are removed from the body
    expand: bool  # False when the delimiter is quoted: no variable expansion in the body
    file_descriptor: int
    content: str  # the body exactly as written (tabs not removed)
    body_start: int
    body_end: int
    end: int  # end of the terminator line


@dataclass(frozen=True, slots=True)
class Trivia:
    """Lines that are not part of an instruction: blank lines, comments, parser directives."""

    kind: Literal["blank", "comment", "directive"]
    start: int
    end: int
    line: int


@dataclass(frozen=True, slots=True)
class Directive:
    """A parser directive (``# syntax=``, ``# escape=``, ``# check=``) at the top of the file."""

    name: str
    value: str
    line: int
    start: int
    end: int


@dataclass(frozen=True, slots=True, eq=False)
class Instruction:
    """One instruction with everything BuildKit derives from it and where each part sits in the source."""

    start: int  # first character of the first line (leading whitespace included)
    end: int  # end of the last line it spans, newline included (heredoc terminators too)
    line: int  # 1-based line of the keyword
    end_line: int
    keyword: str  # as written, any case
    keyword_start: int  # source offset of the keyword
    logical: str  # the instruction after joining continuation lines (BuildKit's "Original")
    segments: tuple[Segment, ...]
    flags: tuple[Flag, ...]
    args_start: int  # index in ``logical`` where the arguments begin
    args: str  # the arguments after the flags, trimmed
    values: tuple[str, ...]  # BuildKit's parsed arguments (JSON resolved, ENV as key, value, sep)
    json: bool  # exec (JSON) form
    heredocs: tuple[Heredoc, ...]
    sub: Instruction | None  # the instruction inside ONBUILD
    comment_lines: tuple[tuple[int, int], ...]  # comment lines inside the continuation
    # The keyword in upper case, as used to identify the instruction (rules ask for it constantly).
    name: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.keyword.upper())

    @property
    def is_known(self) -> bool:
        return self.keyword.lower() in KNOWN_INSTRUCTIONS

    def source_offset(self, logical_index: int) -> int:
        """Where the character at ``logical_index`` of :attr:`logical` stands in the source."""
        return _source_offset(self.segments, logical_index)

    def source_range(self, logical_start: int, logical_end: int) -> tuple[int, int]:
        """Source range covering logical characters ``[logical_start, logical_end)``."""
        return _source_range(self.segments, logical_start, logical_end)

    @property
    def args_end(self) -> int:
        """Source offset just after the last character of the arguments."""
        return self.source_range(self.args_start, self.args_start + len(self.args))[1]

    def dump(self) -> str:
        """BuildKit's s-expression for this instruction, e.g. ``run "echo hi"``."""
        return _dump(self)

    @property
    def shell_script(self) -> str | None:
        """The shell command of a shell-form RUN/CMD/ENTRYPOINT (None for exec form or others)."""
        if self.name in ("RUN", "CMD", "ENTRYPOINT") and not self.json:
            return self.args
        return None


_logical_start = operator.attrgetter("logical_start")


def _source_offset(segments: tuple[Segment, ...], logical_index: int) -> int:
    seg = segments[max(bisect.bisect_right(segments, logical_index, key=_logical_start) - 1, 0)]
    return seg.source_start + min(logical_index - seg.logical_start, seg.length)


def _source_range(segments: tuple[Segment, ...], logical_start: int, logical_end: int) -> tuple[int, int]:
    if logical_end <= logical_start:
        pos = _source_offset(segments, logical_start)
        return pos, pos
    return _source_offset(segments, logical_start), _source_offset(segments, logical_end - 1) + 1


@dataclass(frozen=True, eq=False)
class Document:
    """A parsed Dockerfile: its exact text, directives, instructions and the lines between them."""

    source: str
    escape: str
    directives: tuple[Directive, ...]
    nodes: tuple[Instruction | Trivia, ...]
    line_starts: tuple[int, ...]

    @cached_property
    def instructions(self) -> tuple[Instruction, ...]:
        return tuple(n for n in self.nodes if isinstance(n, Instruction))

    def render(self) -> str:
        """Print the tree: the concatenation of every node's text, identical to the source."""
        return "".join(self.source[n.start : n.end] for n in self.nodes) + self.source[self._covered_end :]

    @property
    def _covered_end(self) -> int:
        return self.nodes[-1].end if self.nodes else 0

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a source offset."""
        i = bisect.bisect_right(self.line_starts, offset) - 1
        return i + 1, offset - self.line_starts[i] + 1

    def newline_at(self, offset: int) -> str:
        """The line ending used by the line containing ``offset`` (LF when it has none)."""
        end = self.source.find("\n", offset)
        if end > 0 and self.source[end - 1] == "\r":
            return "\r\n"
        if end == -1:
            return "\r\n" if "\r\n" in self.source else "\n"
        return "\n"

    def dump(self) -> str:
        """BuildKit's own s-expression dump of the file (its parser tests' ``result`` format)."""
        return "".join(f"({_dump(i)})\n" for i in self.instructions)


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v"}  # fmt: skip


def _go_quote(text: str) -> str:
    """Go's strconv.Quote, so dumps compare byte for byte with BuildKit's."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape: the common case, without the loop
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x80 or ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _dump(ins: Instruction) -> str:
    parts = [ins.keyword.lower()]
    if ins.flags:
        parts.append("[" + " ".join(_go_quote(f.text) for f in ins.flags) + "]")
    if ins.sub is not None:
        parts.append(f"({_dump(ins.sub)})")
    parts.extend(_go_quote(v) for v in ins.values)
    return " ".join(parts).strip()


_ASCII_SPACES = frozenset("\t\n\v\f\r ")
_LATIN1_SPACES = frozenset("\t\n\v\f\r \x85\xa0")


def _is_space(ch: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts \\x1c-\\x1f, which Go does not)."""
    return ch in _LATIN1_SPACES if ch < "\u0100" else ch.isspace()


def _lstrip_space(text: str) -> str:
    i = 0
    while i < len(text) and _is_space(text[i]):
        i += 1
    return text[i:]


def _trim_space(text: str) -> tuple[int, int]:
    """Bounds of ``text`` without leading/trailing Unicode whitespace (Go's strings.TrimSpace)."""
    start, end = 0, len(text)
    while start < end and _is_space(text[start]):
        start += 1
    while end > start and _is_space(text[end - 1]):
        end -= 1
    return start, end


def _is_comment(text: str) -> bool:
    return _lstrip_space(text).startswith("#")


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.escape = "\\"
        self.continuation = self._continuation_regex("\\")
        self.directives_done = False
        self.seen_directives: set[str] = set()
        self.directives: list[Directive] = []
        self.lines: list[tuple[int, int]] = []
        pos = 0
        n = len(source)
        while pos < n:
            nl = source.find("\n", pos)
            end = n if nl == -1 else nl + 1
            self.lines.append((pos, end))
            pos = end

    @staticmethod
    def _continuation_regex(escape: str) -> re.Pattern[str]:
        e = re.escape(escape)
        return re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")

    def _line_text(self, index: int) -> tuple[int, str]:
        """Offset and text (newline removed) of physical line ``index``; drops a leading BOM."""
        start, end = self.lines[index]
        text = self.source[start:end].rstrip("\r\n")
        if index == 0 and text.startswith("\ufeff"):
            return start + 1, text[1:]
        return start, text

    def _check_length(self, index: int) -> None:
        start, end = self.lines[index]
        if end - start > _MAX_LINE_BYTES and len(
            self.source[start:end].encode("utf-8", "surrogateescape")
        ) > (_MAX_LINE_BYTES):
            raise DockerfileSyntaxError(
                f"line longer than BuildKit's limit of {_MAX_LINE_BYTES - 1} bytes", index + 1
            )

    def _possible_directive(self, token: str, line_no: int, start: int, end: int) -> bool:
        if self.directives_done:
            return False
        if not token.startswith("#"):
            self.directives_done = True
            return False
        match = _DIRECTIVE.match(_lstrip_space(token[1:]))
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.directives_done = True
            return False
        name = match.group(1).lower()
        value = match.group(2)
        if name in self.seen_directives:
            raise DockerfileSyntaxError(f"only one {name} parser directive can be used", line_no)
        self.seen_directives.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileSyntaxError(f"invalid escape token '{value}' does not match ` or \\", line_no)
            self.escape = value
            self.continuation = self._continuation_regex(value)
        self.directives.append(Directive(name, value, line_no, start, end))
        return True

    def _trim_continuation(self, text: str) -> tuple[str, bool]:
        match = self.continuation.search(text)
        if match is None:
            return text, True
        return text[: match.start() + (1 if match.group(1) else 0)], False

    def parse(self) -> Document:
        nodes: list[Instruction | Trivia] = []
        lines = self.lines
        count = len(lines)
        i = 0
        while i < count:
            self._check_length(i)
            line_start, line_end = lines[i]
            offset, text = self._line_text(i)
            comment = _is_comment(text)
            token = _lstrip_space(text)
            token_start = offset + len(text) - len(token)
            is_directive = self._possible_directive(token, i + 1, line_start, line_end)
            if comment:
                token = ""
            i += 1
            first, eol = self._trim_continuation(token)
            if eol and not first:
                kind: Literal["blank", "comment", "directive"] = (
                    "directive" if is_directive else "comment" if comment else "blank"
                )
                nodes.append(Trivia(kind, line_start, line_end, i))
                continue
            start_line = i
            segments = [Segment(0, token_start, len(first))]
            parts = [first]
            length = len(first)
            comment_lines: list[tuple[int, int]] = []
            while not eol and i < count:
                self._check_length(i)
                cont_start, cont_end = lines[i]
                _, raw = self._line_text(i)
                i += 1
                if _is_comment(raw):
                    comment_lines.append((cont_start, cont_end))
                    continue
                if not _lstrip_space(raw):
                    continue
                piece, eol = self._trim_continuation(raw)
                if piece:
                    segments.append(Segment(length, cont_start, len(piece)))
                parts.append(piece)
                length += len(piece)
            logical = "".join(parts)
            try:
                ins = self._instruction(logical, tuple(segments), 0, start_line)
            except DockerfileSyntaxError as err:
                raise DockerfileSyntaxError(err.message, start_line, err.column) from None
            heredocs: list[Heredoc] = []
            if _can_contain_heredoc(ins) and "<<" in logical:
                try:
                    found = _heredocs_from_line(logical)
                except LexError as err:
                    raise DockerfileSyntaxError(str(err), start_line) from None
                for name, chomp, expand, fd in found:
                    body_start = lines[i][0] if i < count else len(self.source)
                    body_end = body_start
                    terminated = False
                    while i < count:
                        b_start, b_end = lines[i]
                        raw_line = self.source[b_start:b_end]
                        i += 1
                        candidate = raw_line.rstrip("\r\n")
                        if chomp:
                            candidate = candidate.lstrip("\t")
                        if candidate == name:
                            terminated = True
                            break
                        body_end = b_end
                    if not terminated:
                        raise DockerfileSyntaxError(
                            f"unterminated heredoc: no line '{name}' closes the heredoc started here",
                            start_line,
                            ins.source_offset(logical.find("<<")) - lines[start_line - 1][0] + 1,
                        )
                    heredocs.append(
                        Heredoc(
                            name=name,
                            chomp=chomp,
                            expand=expand,
                            file_descriptor=fd,
                            content=self.source[body_start:body_end],
                            body_start=body_start,
                            body_end=body_end,
                            end=lines[i - 1][1],
                        )
                    )
            end = lines[i - 1][1]
            nodes.append(
                _replace(
                    ins,
                    start=lines[start_line - 1][0],
                    end=end,
                    end_line=i,
                    heredocs=tuple(heredocs),
                    comment_lines=tuple(comment_lines),
                )
            )
        if not any(isinstance(n, Instruction) for n in nodes):
            raise DockerfileSyntaxError("file with no instructions", max(count, 1))
        starts = tuple(s for s, _ in lines) or (0,)
        return Document(self.source, self.escape, tuple(self.directives), tuple(nodes), starts)

    def _instruction(self, logical: str, segments: tuple[Segment, ...], base: int, line: int) -> Instruction:
        """Build an instruction from ``logical[base:]`` (``base`` > 0 for the inside of ONBUILD)."""
        t_start, t_end = _trim_space(logical[base:])
        t_start += base
        t_end += base
        match = _WORD_SEPARATOR.search(logical, t_start, t_end)
        if match is None:
            keyword, rest_start = logical[t_start:t_end], t_end
        else:
            keyword, rest_start = logical[t_start : match.start()], match.end()
        flags, args_start = self._extract_flags(logical, rest_start, t_end)
        a_start, a_end = _trim_space(logical[args_start:t_end])
        args_start, args = args_start + a_start, logical[args_start + a_start : args_start + a_end]
        kind = keyword.lower()
        sub = None
        values: tuple[str, ...] = ()
        is_json = False
        if kind != "onbuild":
            values, is_json = _parse_arguments(kind, args, self.escape)
        elif args:
            sub = self._instruction(logical, segments, args_start, line)
        # Offsets so far are logical; the source positions of the whole instruction come later.
        return Instruction(
            start=0, end=0, line=line, end_line=line, keyword=keyword,
            keyword_start=_source_offset(segments, t_start), logical=logical, segments=segments,
            flags=tuple(Flag(text, *_source_range(segments, s, e)) for text, s, e in flags),
            args_start=args_start, args=args, values=values, json=is_json, heredocs=(), sub=sub,
            comment_lines=(),
        )  # fmt: skip

    def _extract_flags(self, logical: str, pos: int, end: int) -> tuple[list[tuple[str, int, int]], int]:
        """BuildKit's extractBuilderFlags: leading ``--words`` up to the first other word.

        BuildKit walks this part byte by byte, so a non-ASCII character in a flag comes out as one
        Latin-1 character per UTF-8 byte (and bytes 0x85 and 0xA0 count as blanks). The same is done
        here on the bytes, with offsets mapped back to characters. Its escape character is always
        the backslash, whatever ``# escape=`` says.
        """
        first = pos
        while first < end and logical[first] in _ASCII_SPACES:
            first += 1
        if first == end:
            return [], end
        if logical[first] < "\x80" and not logical.startswith("--", first):
            return [], first  # no flags; up to here bytes and characters are the same
        data = logical[pos:end]
        char_at: Sequence[int]  # byte offset -> character offset in ``logical``
        if data.isascii():
            char_at = range(pos, end + 1)
        else:
            raw = data.encode("utf-8", "surrogateescape")
            data = raw.decode("latin-1")
            char_at = [0] * (len(raw) + 1)
            offset = 0
            for index, ch in enumerate(logical[pos:end]):
                width = len(ch.encode("utf-8", "surrogateescape"))
                for k in range(width):
                    char_at[offset + k] = pos + index
                offset += width
            char_at[len(raw)] = end
        flags: list[tuple[str, int, int]] = []
        escape = "\\"
        i, n = 0, len(data)
        while True:
            while i < n and _is_space(data[i]):
                i += 1
            if i >= n:
                return flags, end
            if not (data[i] == "-" and i + 1 < n and data[i + 1] == "-"):
                return flags, char_at[i]
            word_start = i
            buf: list[str] = []
            quote = ""
            blank_ok = False
            while i < n:
                ch = data[i]
                if quote:
                    if ch == quote:
                        quote = ""
                    elif ch == escape:
                        if i + 1 == n:
                            quote = ""
                        else:
                            i += 1
                            buf.append(data[i])
                    else:
                        buf.append(ch)
                    i += 1
                    continue
                if _is_space(ch):
                    break
                if ch in "'\"":
                    quote = ch
                    blank_ok = True
                elif ch == escape:
                    if i + 1 < n:
                        i += 1
                        buf.append(data[i])
                else:
                    buf.append(ch)
                i += 1
            word = "".join(buf)
            if word == "--":
                return flags, char_at[i]
            if blank_ok or word:
                flags.append((word, char_at[word_start], char_at[i]))


_INSTRUCTION_FIELDS = tuple(name for name, f in Instruction.__dataclass_fields__.items() if f.init)


def _replace(ins: Instruction, **changes: object) -> Instruction:
    fields = {name: getattr(ins, name) for name in _INSTRUCTION_FIELDS}
    fields.update(changes)
    return Instruction(**fields)  # type: ignore[arg-type]


def _can_contain_heredoc(ins: Instruction) -> bool:
    target = ins.sub if ins.sub is not None else ins
    return target.keyword.lower() in _HEREDOC_INSTRUCTIONS and not target.json


def _heredocs_from_line(line: str) -> list[tuple[str, bool, bool, int]]:
    """Heredoc markers in an instruction line: (name, chomp, expand, file descriptor)."""
    try:
        words = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True).process_words(line)
    except LexError:
        return []  # BuildKit ignores lexing errors here: the line simply has no heredocs
    found = []
    for word in words:
        match = _HEREDOC_WORD.match(word)
        if not match or not match.group(3):
            continue
        rest = match.group(3)
        plain = Lexer("\\", skip_unset=True).process_words(rest)
        if len(plain) != 1:
            continue
        raw = Lexer("\\", raw_quotes=True, skip_unset=True).process_words(rest)
        name = plain[0]
        quotes = name.count("'") + name.count('"')
        raw_quotes = raw[0].count("'") + raw[0].count('"')
        fd = int(match.group(1)) if match.group(1) else 0
        found.append((name, match.group(2) == "-", quotes == raw_quotes, fd))
    return found


class _NotStringArray(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise ValueError(name)  # Go's JSON decoder has no NaN/Infinity


def _parse_json(rest: str) -> list[str] | None:
    """The exec form: a JSON array of strings, or None when ``rest`` is not valid JSON."""
    text = _lstrip_space(rest)
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArray
    return value


def _split_words(rest: str) -> tuple[str, ...]:
    return tuple(_WORD_SEPARATOR.split(rest)) if rest else ()


def parse_words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: whitespace-separated words, quotes and escapes kept as written."""
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    quote = ""
    blank_ok = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if _is_space(ch):
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            if ch == escape and quote != "'":
                if i + 1 == n:
                    quote = ""
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
            i += 1
            continue
        if _is_space(ch):
            in_word = False
            if blank_ok or buf:
                words.append("".join(buf))
            buf.clear()
            blank_ok = False
            i += 1
            continue
        if ch in "'\"":
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = rest[i]
        buf.append(ch)
        i += 1
    if (in_word or quote) and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _parse_name_val(rest: str, key: str, escape: str) -> tuple[str, ...]:
    words = parse_words(rest, escape)
    if not words:
        return ()
    if "=" not in words[0]:
        parts = _WORD_SEPARATOR.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise DockerfileSyntaxError(f"{key} must have two arguments", 1)
        return (parts[0], parts[1], "")
    values: list[str] = []
    for word in words:
        if "=" not in word:
            raise DockerfileSyntaxError(
                f"Syntax error - can't find = in {_go_quote(word)}. Must be of the form: name=value", 1
            )
        name, value = word.split("=", 1)
        values += [name, value, "="]
    return tuple(values)


def _maybe_json(rest: str, *, to_list: bool) -> tuple[tuple[str, ...], bool]:
    try:
        parsed = _parse_json(rest)
    except _NotStringArray:
        raise DockerfileSyntaxError(
            "when using JSON array syntax, arrays must be comprised of strings only", 1
        ) from None
    if parsed is not None:
        return tuple(parsed), True
    if to_list:
        return _split_words(rest), False
    return ((rest,) if rest else ()), False


def _parse_arguments(kind: str, rest: str, escape: str) -> tuple[tuple[str, ...], bool]:
    """BuildKit's per-instruction argument parsing: the values and whether it is JSON form."""
    if kind in ("add", "copy", "volume"):
        return _maybe_json(rest, to_list=True)
    if kind in ("cmd", "entrypoint", "run", "shell"):
        return _maybe_json(rest, to_list=False)
    if kind in ("expose", "from"):
        return _split_words(rest), False
    if kind == "arg":
        return tuple(parse_words(rest, escape)), False
    if kind in ("env", "label"):
        return _parse_name_val(rest, kind.upper(), escape), False
    if kind in ("maintainer", "stopsignal", "user", "workdir"):
        return ((rest,) if rest else ()), False
    if kind == "healthcheck":
        sep = 0
        while sep < len(rest) and not _is_space(rest[sep]):
            sep += 1
        if sep == 0:
            return (), False
        nxt = sep
        while nxt < len(rest) and _is_space(rest[nxt]):
            nxt += 1
        values, is_json = _maybe_json(rest[nxt:], to_list=False)
        return (rest[:sep], *values), is_json
    return ("",), False  # unknown instruction: BuildKit's parser keeps it with an empty value


def decode(data: bytes) -> str:
    """Bytes of a Dockerfile to text; undecodable bytes survive a round trip (surrogateescape)."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DockerfileSyntaxError("binary data (a NUL byte): this is not a text file", line)
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse(source: str) -> Document:
    """Parse Dockerfile text; raises :class:`DockerfileSyntaxError` where BuildKit would fail."""
    return _Parser(source).parse()
