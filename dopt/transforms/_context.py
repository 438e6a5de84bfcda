"""Reading the build context: which files a build can copy, and what dependency manifests say.

Rules that look past the Dockerfile (cache order, ``.dockerignore`` advice) need the same view of
the context folder that BuildKit has:

* :class:`DockerIgnore` reads a ``.dockerignore`` and matches paths exactly as Docker does
  (``moby/patternmatcher`` with ``ignorefile.ReadAll``): comments, trimmed lines, ``filepath.Clean``
  on every pattern, a leading ``/`` dropped, ``*`` and ``?`` not crossing ``/``, ``**`` crossing any
  number of directories, ``!`` exceptions evaluated in order, and a path excluded when it or any of
  its parent directories matches.
* :class:`BuildContext` answers "is this file in the context, and not ignored?" and reads it.
  BuildKit prefers ``<Dockerfile>.dockerignore`` beside the Dockerfile over ``.dockerignore`` at the
  context root; so does :func:`open_context`.
* :func:`parse_requirements` / :func:`resolve_requirements` follow pip's requirement files through
  ``-r``/``-c`` includes (relative to the including file) and note the lines that need the source
  tree (``-e .``, local paths, ``file:`` URLs, local ``--find-links``).

Paths given to and returned by these helpers are POSIX strings relative to the context root.
Nothing here writes files or touches the network.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dopt.optimizer.rules import Context

MAX_MANIFEST_BYTES = 4 * 1024 * 1024

# ----------------------------------------------------------------------------------------------
# Go's filepath.Clean (Docker cleans every pattern with it)
# ----------------------------------------------------------------------------------------------


def go_clean(path: str) -> str:
    """``filepath.Clean`` on a slash-separated path: the shortest equivalent, lexically."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


# ----------------------------------------------------------------------------------------------
# .dockerignore
# ----------------------------------------------------------------------------------------------


class IgnoreFileError(ValueError):
    """A .dockerignore BuildKit would refuse (an illegal or malformed pattern)."""


_REGEX_SPECIAL = frozenset(".+()|{}$")


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned pattern of a .dockerignore, compiled as patternmatcher compiles it."""

    text: str  # the cleaned pattern without its "!"
    exclusion: bool  # a "!" line: re-include what earlier lines excluded
    line: int  # 1-based line in the file
    kind: str = field(compare=False)  # exact, prefix, suffix or regexp
    regex: re.Pattern[str] | None = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str, line: int) -> IgnorePattern:
        exclusion = pattern.startswith("!")
        text = pattern[1:] if exclusion else pattern
        if exclusion and not text:
            raise IgnoreFileError(f'line {line}: illegal exclusion pattern: "!"')
        _check_glob(text, line)
        kind, regex = _compile(text)
        return cls(text, exclusion, line, kind, regex)

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None

    def __str__(self) -> str:
        return ("!" if self.exclusion else "") + self.text


def _check_glob(text: str, line: int) -> None:
    """Reject what Go's filepath.Match calls a bad pattern (an unterminated ``[`` class)."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < len(text) and text[j] == "^":
                j += 1
            first = True
            while j < len(text) and (text[j] != "]" or first):
                if text[j] == "\\":
                    j += 1
                first = False
                j += 1
            if j >= len(text):
                raise IgnoreFileError(f"line {line}: syntax error in pattern {text!r} (unterminated [)")
            i = j
        i += 1


def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """patternmatcher's Pattern.compile: a match kind and, for "regexp", the regular expression."""
    out = ["^"]
    kind = "exact"
    i = 0
    iteration = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        out.append(".*")
                        kind = "regexp"
                else:
                    out.append("(.*/)?")
                    kind = "regexp"
                if iteration == 0:
                    kind = "suffix"
            else:
                out.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            out.append("[^/]")
            kind = "regexp"
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append("\\" + pattern[i])
                i += 1
                kind = "regexp"
            else:
                out.append("\\\\")
        elif ch in "[]":
            out.append(ch)
            kind = "regexp"
        else:
            out.append(ch)
        iteration += 1
    if kind != "regexp":
        return kind, None
    try:
        return kind, re.compile("".join(out) + r"\Z")
    except re.error as err:
        raise IgnoreFileError(f"syntax error in pattern {pattern!r}: {err}") from None


def read_ignore_lines(text: str) -> list[tuple[int, str]]:
    """ignorefile.ReadAll: (line number, pattern) for every pattern line, cleaned."""
    patterns: list[tuple[int, str]] = []
    if text.startswith("\ufeff"):
        text = text[1:]
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append((number, ("!" if invert else "") + pattern))
    return patterns


@dataclass(frozen=True)
class DockerIgnore:
    """The patterns of one .dockerignore, matched as BuildKit matches them when it sends the context."""

    patterns: tuple[IgnorePattern, ...]
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> DockerIgnore:
        """Read a .dockerignore (``ignorefile.ReadAll``, then ``patternmatcher.New``)."""
        return cls.from_patterns(read_ignore_lines(text), path)

    @classmethod
    def from_patterns(cls, patterns: Iterable[tuple[int, str] | str], path: Path | None = None) -> DockerIgnore:
        """``patternmatcher.New``: trim, ``filepath.Clean`` (the ``!`` included), then look at the ``!``."""
        compiled = []
        for number, entry in enumerate(patterns, start=1):
            line, pattern = entry if isinstance(entry, tuple) else (number, entry)
            pattern = pattern.strip()
            if pattern:
                compiled.append(IgnorePattern.compile(go_clean(pattern), line))
        return cls(tuple(compiled), path)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(str(p) for p in self.patterns)

    def deciding_pattern(self, path: str) -> IgnorePattern | None:
        """``MatchesOrParentMatches`` on a slash-separated path as given: the last pattern that
        excluded it (the path itself or one of its parent folders), None when it is sent."""
        matched: IgnorePattern | None = None
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != (matched is not None):
                continue
            hit = pattern.match(path)
            if not hit and parent != ".":
                hit = any(pattern.match("/".join(parent_dirs[: i + 1])) for i in range(len(parent_dirs)))
            if hit:
                matched = None if pattern.exclusion else pattern
        return matched

    def matches(self, path: str) -> bool:
        """The method ``PatternMatcher.MatchesOrParentMatches``: no cleaning of ``path``."""
        return self.deciding_pattern(path) is not None

    def ignores(self, path: str) -> bool:
        """Whether ``path`` (relative to the context) is left out of the build context.

        The package function ``MatchesOrParentMatches``: the path is cleaned first, and the context
        root itself is never excluded.
        """
        cleaned = go_clean(path)
        return cleaned != "." and self.matches(cleaned)


# ----------------------------------------------------------------------------------------------
# The build context folder
# ----------------------------------------------------------------------------------------------


def _normal(rel: str) -> str | None:
    """A context-relative path, cleaned as BuildKit cleans COPY sources (``..`` stops at the root)."""
    if "\0" in rel:
        return None
    cleaned = go_clean("/" + rel.lstrip("/"))
    return "." if cleaned == "/" else cleaned[1:]


@dataclass
class BuildContext:
    """The files ``docker build`` would send: a folder and its ignore file."""

    root: Path | None  # None: no context was given, so nothing is visible
    ignore: DockerIgnore | None = None
    ignore_error: str | None = None
    # Answers of the file system by context path: a context is read by many rules in one pass.
    _stats: dict[str, os.stat_result | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def available(self) -> bool:
        """Whether there is a folder to look at."""
        return self.root is not None and self.root.is_dir()

    @property
    def ignore_path(self) -> Path | None:
        return self.ignore.path if self.ignore else None

    def _path(self, rel: str) -> Path | None:
        normal = _normal(rel)
        if normal is None or self.root is None:
            return None
        return self.root if normal == "." else self.root / normal

    def ignored_by(self, rel: str) -> IgnorePattern | None:
        """The .dockerignore pattern that keeps ``rel`` out of the context, if any."""
        if self.ignore is None:
            return None
        normal = _normal(rel)
        return None if normal in (None, ".") else self.ignore.deciding_pattern(normal)

    def _stat(self, rel: str) -> os.stat_result | None:
        if rel not in self._stats:
            self._stats[rel] = self._stat_now(rel)
        return self._stats[rel]

    def _stat_now(self, rel: str) -> os.stat_result | None:
        path = self._path(rel)
        if path is None:
            return None
        try:
            return path.stat()
        except (OSError, ValueError):
            return None

    def on_disk(self, rel: str) -> bool:
        """Whether ``rel`` exists in the folder, ignored or not."""
        return self._stat(rel) is not None

    def is_file(self, rel: str) -> bool:
        """A regular file that the build can see (present and not ignored)."""
        info = self._stat(rel)
        return info is not None and stat.S_ISREG(info.st_mode) and self.ignored_by(rel) is None

    def is_dir(self, rel: str) -> bool:
        """A directory that the build can see (present and not ignored itself)."""
        info = self._stat(rel)
        return info is not None and stat.S_ISDIR(info.st_mode) and self.ignored_by(rel) is None

    def exists(self, rel: str) -> bool:
        return self.is_file(rel) or self.is_dir(rel)

    def read_text(self, rel: str) -> str | None:
        """The text of a visible file (None when absent, ignored, too big or unreadable)."""
        if not self.is_file(rel):
            return None
        path = self._path(rel)
        assert path is not None
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                return None
            return path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return None

    def listdir(self, rel: str) -> list[str]:
        """Names in a visible directory that are not ignored, sorted."""
        path = self._path(rel)
        if path is None or not self.is_dir(rel):
            return []
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return []
        prefix = "" if _normal(rel) == "." else f"{_normal(rel)}/"
        return [name for name in names if self.ignored_by(prefix + name) is None]

    def walk(
        self, limit: int = 20000, skip: Callable[[str], bool] | None = None, start: str = "."
    ) -> Iterator[tuple[str, bool]]:
        """(relative path, is directory) of every visible entry under ``start``, breadth first, at most ``limit``.

        ``skip(path)`` stops the walk from descending into a directory (it is still yielded).
        """
        base = _normal(start)
        if base is None or self.root is None or (base != "." and self.ignored_by(base) is not None):
            return
        queue = [base]
        seen = 0
        while queue:
            current = queue.pop(0)
            try:
                # scandir gives each entry's type without a stat call per file: walks stay cheap.
                entries = sorted(os.scandir(self.root if current == "." else self.root / current), key=_name)
            except OSError:
                continue
            prefix = "" if current == "." else f"{current}/"
            for entry in entries:
                rel = prefix + entry.name
                if self.ignored_by(rel) is not None:
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                yield rel, is_dir
                seen += 1
                if seen >= limit:
                    return
                if is_dir and not (skip and skip(rel)):
                    queue.append(rel)

    def files(self, rel: str = ".", skip_names: Iterable[str] = (), limit: int = 5000) -> Iterator[str]:
        """Relative paths of the visible regular files under ``rel``, not descending into ``skip_names``."""
        skipped = set(skip_names)
        for path, is_dir in self.walk(limit=limit, skip=lambda p: p.rsplit("/", 1)[-1] in skipped, start=rel):
            if not is_dir:
                yield path

    def glob(self, pattern: str) -> list[str]:
        """Visible context paths that a COPY source with wildcards (``*.py``, ``src/*/x``) names."""
        normal = _normal(pattern)
        if normal is None:
            return []
        matcher = IgnorePattern.compile(normal, 0)
        folder = normal.rsplit("/", 1)[0] if "/" in normal else "."
        if any(ch in folder for ch in "*?["):
            return [p for p, _ in self.walk() if matcher.match(p)]
        prefix = "" if folder == "." else folder + "/"
        return [prefix + name for name in self.listdir(folder) if matcher.match(prefix + name)]


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def find_ignore_file(context_dir: Path, dockerfile: Path | None) -> Path | None:
    """The ignore file BuildKit uses: ``<Dockerfile>.dockerignore`` beside it, else ``.dockerignore``."""
    if dockerfile is not None:
        beside = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if beside.is_file():
            return beside
    root = context_dir / ".dockerignore"
    return root if root.is_file() else None


def open_context(ctx: Context) -> tuple[BuildContext | None, str]:
    """The build context of ``ctx``, or None and a sentence saying why there is none."""
    return ctx.shared(_open_context)


def _open_context(ctx: Context) -> tuple[BuildContext | None, str]:
    directory = ctx.context_dir
    if directory is None:
        return None, "no build context was given"
    if not directory.is_dir():
        return None, f"the build context {directory} is not a folder dopt can read"
    ignore_file = find_ignore_file(directory, Path(ctx.path) if ctx.path else None)
    context = BuildContext(directory)
    if ignore_file is not None:
        try:
            text = ignore_file.read_bytes().decode("utf-8", "replace")
            context.ignore = DockerIgnore.parse(text, ignore_file)
        except (OSError, IgnoreFileError) as err:
            context.ignore_error = f"{ignore_file.name}: {err}"
            context.ignore = DockerIgnore((), ignore_file)
    return context, ""


# ----------------------------------------------------------------------------------------------
# pip requirement files
# ----------------------------------------------------------------------------------------------

_COMMENT = re.compile(r"(^|\s+)#.*$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_ARCHIVE = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar", ".zip")
_REQ_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
    "-e": "editable",
    "--editable": "editable",
    "-f": "find-links",
    "--find-links": "find-links",
}


@dataclass(frozen=True)
class RequirementLine:
    """One logical line of a requirements file that matters for where its files come from."""

    kind: str  # requirement, constraint (an included file), editable, find-links, package, option
    value: str
    line: int


def _first_word(text: str) -> str:
    """The first shell word of an option's value, as pip's shlex split reads it."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return words[0] if words else ""


def _split_option(text: str) -> tuple[str, str] | None:
    """(kind, value) of ``-r x``, ``-rx``, ``--requirement=x`` style lines."""
    for option, kind in _REQ_OPTIONS.items():
        if option.startswith("--"):
            if text == option or text.startswith((option + "=", option + " ", option + "\t")):
                return kind, _first_word(text[len(option) :].lstrip("= \t"))
        elif text.startswith(option):
            return kind, _first_word(text[len(option) :].strip())
    return None


def parse_requirements(text: str) -> list[RequirementLine]:
    """The lines of a requirements file as pip reads them (continuations joined, comments removed)."""
    lines: list[RequirementLine] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending += raw[:-1]
            continue
        logical = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if not logical:
            continue
        option = _split_option(logical)
        if option is not None:
            lines.append(RequirementLine(option[0], option[1], start))
        elif logical.startswith("-"):
            lines.append(RequirementLine("option", logical, start))
        else:
            lines.append(RequirementLine("package", logical, start))
    if pending.strip():
        lines.append(RequirementLine("package", _COMMENT.sub("", pending).strip(), start))
    return lines


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


def is_local_requirement(value: str) -> bool:
    """Whether a requirement (a line or a ``pip install`` argument) names files on disk.

    pip treats a requirement as a path when it contains a path separator, starts with ``.``, is an
    archive name, or is a ``file:`` URL (``name @ file:///...`` included).
    """
    spec = value.split(";", 1)[0].strip()
    lowered = spec.lower()
    if "@" in spec and not spec.startswith(("git+", "hg+", "svn+", "bzr+")):
        target = spec.split("@", 1)[1].strip().lower()
        return target.startswith("file:")
    if lowered.startswith("file:"):
        return True
    if is_url(spec) or lowered.startswith(("git+", "hg+", "svn+", "bzr+")):
        return False
    if spec.startswith((".", "/", "~")):
        return True
    name = spec.split("[", 1)[0]
    return "/" in name or "\\" in name or lowered.endswith(_ARCHIVE)


def requirement_name(value: str) -> str:
    """The base of a requirement: what an archive or path is named, or the project name."""
    return re.split(r"[\s\[<>=!~;@]", value.strip(), maxsplit=1)[0]


@dataclass(frozen=True)
class SourceNeed:
    """A requirements line that reads the source tree: where it is and what it does."""

    path: str
    line: int
    reason: str


@dataclass(frozen=True)
class MissingInclude:
    """A requirements file that could not be read, and the line that includes it (None for a root)."""

    path: str
    included_by: tuple[str, int] | None


@dataclass
class RequirementFiles:
    """Every file a ``pip install -r/-c`` reads, and why the install may need more than them."""

    files: list[str] = field(default_factory=list)  # paths in reading order, the roots first
    needs_source: list[SourceNeed] = field(default_factory=list)
    missing: list[MissingInclude] = field(default_factory=list)


def resolve_requirements(read: Callable[[str], str | None], roots: list[str], base_dir: str) -> RequirementFiles:
    """Follow ``-r``/``-c`` includes from ``roots`` (relative to ``base_dir``; POSIX paths).

    ``read(path)`` returns a file's text or None when it cannot be read. Includes given by URL are
    remote and need nothing from the context. A nested include is relative to the including file.
    """
    result = RequirementFiles()
    queue: list[tuple[str, tuple[str, int] | None]] = [
        (go_clean(root if root.startswith("/") else f"{base_dir}/{root}"), None) for root in roots
    ]
    seen: set[str] = set()
    while queue:
        path, included_by = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = read(path)
        if text is None:
            result.missing.append(MissingInclude(path, included_by))
            continue
        result.files.append(path)
        folder = path.rsplit("/", 1)[0] if "/" in path else "."
        for entry in parse_requirements(text):
            if entry.kind in ("requirement", "constraint"):
                if not entry.value or is_url(entry.value):
                    continue
                target = entry.value if entry.value.startswith("/") else f"{folder}/{entry.value}"
                queue.append((go_clean(target), (path, entry.line)))
            elif entry.kind == "editable":
                if is_local_requirement(entry.value) or not is_url(entry.value.split("#", 1)[0].split("+", 1)[-1]):
                    reason = f"`-e {entry.value}` installs from the source tree"
                    result.needs_source.append(SourceNeed(path, entry.line, reason))
            elif entry.kind == "find-links":
                if entry.value and not is_url(entry.value):
                    reason = f"`--find-links {entry.value}` reads a local folder"
                    result.needs_source.append(SourceNeed(path, entry.line, reason))
            elif entry.kind == "package" and is_local_requirement(entry.value):
                reason = f"`{requirement_name(entry.value)}` is a local path"
                result.needs_source.append(SourceNeed(path, entry.line, reason))
    return result
