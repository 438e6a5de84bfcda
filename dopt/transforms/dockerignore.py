"""DO301 dockerignore: a copy of the whole build context lets in files that do not belong in the image.

## What it does
When a stage copies the whole build context (``COPY . <dest>`` or ``ADD . <dest>``), looks at the
ignore file BuildKit would use (``<Dockerfile>.dockerignore`` beside the Dockerfile, else
``.dockerignore`` at the context root) and at the files really in the context. It reports:

* a missing ignore file, with the lines a new one should start with: ``.git`` and what the
  project's ecosystem leaves behind (``node_modules``, ``**/__pycache__``, ``.venv``, ``target``,
  ``bin``/``obj``), plus anything from the list below that is present;
* an ignore file that lets in version-control folders (``.git``), installed packages
  (``node_modules``, virtualenvs), caches (``__pycache__``, ``*.pyc``, ``.pytest_cache`` ...), build
  outputs (``dist``, ``build``, ``target``, ``bin``/``obj``, ``.next``) or secrets (``.env`` files,
  private keys, ``.ssh``, ``.aws``, ``.netrc``, ``.git-credentials``, ``.pypirc``) that exist in the
  context, with the exact lines to append.

Matching follows Docker's own rules (see ``dopt.transforms._context.DockerIgnore``), so a file a
pattern already excludes, or that an earlier ``!`` exception deliberately re-includes after a later
pattern, is judged as Docker would.

This is a report only: dopt edits the Dockerfile, and the remedy is a change to another file. The
message prints the lines to add; write them to the ignore file yourself.

## Why
Everything in the context is sent to the builder and copied into the image by ``COPY .``: a
``.git`` folder or ``node_modules`` makes the image larger and the context transfer slower; files
that change on every run (``__pycache__``, build outputs) break the layer cache; a host
``node_modules`` or virtualenv copied over the one built in the image breaks it; and secrets end up
in a layer anyone with the image can read.

## Example
```dockerfile
FROM node:18
WORKDIR /app
COPY . .
```
with no ``.dockerignore`` and a ``node_modules`` folder in the context reports: add ``.git`` and
``node_modules`` to a new ``.dockerignore``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.optimizer.syntax import Instruction
from dopt.transforms._context import BuildContext, DockerIgnore, go_clean, open_context

_VCS = (".git", ".hg", ".svn")
_CACHES = (".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".gradle", ".parcel-cache")
_SECRET_NAMES = (".netrc", ".git-credentials", ".pypirc", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
_SECRET_DIRS = (".ssh", ".aws", ".gnupg")
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
_ENV_TEMPLATES = re.compile(r"\.env\.(example|sample|template|dist|defaults)$|\.env\.[^/]*\.example$")
_PYTHON_MARKERS = ("requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile")
_NODE_MARKERS = ("package.json",)
_NO_DESCENT = frozenset({*_VCS, "node_modules", "__pycache__", *_CACHES, ".venv", "venv", "target", ".next"})


@dataclass
class _Leak:
    line: str  # the .dockerignore line that keeps it out
    what: str  # what it is, for the message
    paths: list[str] = field(default_factory=list)  # examples found in the context


def _root_copy(ins: Instruction) -> bool:
    if ins.name not in ("COPY", "ADD") or ins.heredocs or len(ins.values) < 2:
        return False
    if any(f.name == "from" for f in ins.flags):
        return False
    return any(go_clean("/" + s.lstrip("/")) == "/" for s in ins.values[:-1] if "$" not in s)


def _pattern(rel: str, name: str) -> str:
    """The line for a name: the path itself at the root, ``**/name`` when it lives deeper."""
    return name if rel == name else f"**/{name}"


def _find_leaks(context: BuildContext) -> list[_Leak]:
    leaks: dict[str, _Leak] = {}

    def add(line: str, what: str, path: str) -> None:
        leak = leaks.setdefault(line, _Leak(line, what))
        if len(leak.paths) < 3:
            leak.paths.append(path)

    def beside(rel: str, *names: str) -> bool:
        folder = rel.rsplit("/", 1)[0] if "/" in rel else "."
        return any(context.is_file(name if folder == "." else f"{folder}/{name}") for name in names)

    def skip(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return name in _NO_DESCENT or context.is_file(f"{rel}/pyvenv.cfg")

    for rel, is_dir in context.walk(skip=skip):
        name = rel.rsplit("/", 1)[-1]
        if is_dir:
            if name in _VCS:
                add(_pattern(rel, name), "version-control history", rel)
            elif name == "node_modules":
                add(_pattern(rel, name), "installed node packages", rel)
            elif context.is_file(f"{rel}/pyvenv.cfg"):
                add(rel, "a Python virtualenv", rel)
            elif name == "__pycache__":
                add("**/__pycache__", "Python bytecode caches", rel)
            elif name in _CACHES:
                add(_pattern(rel, name), "tool caches", rel)
            elif _build_output(context, rel, name, beside):
                add(_pattern(rel, name), "build outputs", rel)
            elif name in _SECRET_DIRS:
                add(_pattern(rel, name), "secrets", rel)
            continue
        if name.endswith(".pyc") and "/__pycache__/" not in f"/{rel}":
            add("**/*.pyc", "Python bytecode", rel)
        elif name == ".env" or (name.startswith(".env.") and not _ENV_TEMPLATES.search(name)):
            add(_pattern(rel, name), "secrets (environment files)", rel)
        elif name in _SECRET_NAMES:
            add(_pattern(rel, name), "secrets", rel)
        elif name.endswith(_SECRET_SUFFIXES) and not name.endswith(".pub"):
            suffix = name[name.rindex(".") :]
            add(f"**/*{suffix}", "secrets (keys and certificates)", rel)
    return list(leaks.values())


def _build_output(context: BuildContext, rel: str, name: str, beside: Callable[..., bool]) -> bool:
    """Whether a folder is what a build in its parent folder produces."""
    if name in ("dist", "build"):
        return beside(rel, *_PYTHON_MARKERS, *_NODE_MARKERS)
    if name == "target":
        return beside(rel, "Cargo.toml", "pom.xml")
    if name in ("bin", "obj"):
        return _has_project_file(context, rel)
    return name in (".next", ".nuxt", "coverage") and beside(rel, *_NODE_MARKERS)


def _has_project_file(context: BuildContext, rel: str) -> bool:
    folder = rel.rsplit("/", 1)[0] if "/" in rel else "."
    return any(re.search(r"\.(cs|fs|vb)proj$", name) for name in context.listdir(folder))


def _baseline(context: BuildContext) -> list[_Leak]:
    """Lines every new ignore file for this project should have, whether or not the paths exist yet."""
    lines = [_Leak(".git", "version-control history")]
    if any(context.is_file(m) for m in _PYTHON_MARKERS):
        lines += [
            _Leak("**/__pycache__", "Python bytecode caches"),
            _Leak("**/*.py[cod]", "Python bytecode"),
            _Leak(".venv", "a Python virtualenv"),
        ]
    if any(context.is_file(m) for m in _NODE_MARKERS):
        lines.append(_Leak("node_modules", "installed node packages"))
    if context.is_file("Cargo.toml") or context.is_file("pom.xml"):
        lines.append(_Leak("target", "build outputs"))
    if any(re.search(r"\.(cs|fs|vb)proj$", name) for name in context.listdir(".")):
        lines += [_Leak("bin", "build outputs"), _Leak("obj", "build outputs")]
    return lines


def _effective(context: BuildContext, leaks: list[_Leak]) -> list[_Leak]:
    """The leaks whose line would exclude them when appended to the current ignore file."""
    current = context.ignore.lines if context.ignore else ()
    kept = []
    for leak in leaks:
        trial = DockerIgnore.parse("\n".join([*current, leak.line]))
        if all(trial.ignores(path) for path in leak.paths):
            kept.append(leak)
    return kept


class DockerignoreGaps(Rule):
    code = "DO301"
    name = "dockerignore"
    summary = "Whole build context copied without a .dockerignore keeping out VCS data, packages, caches, secrets"
    fix_safety = None

    def check(self, ctx: Context) -> Iterator[Finding]:
        copy = next((ins for ins in ctx.document.instructions if _root_copy(ins)), None)
        if copy is None:
            return
        context, _ = open_context(ctx)
        if context is None or context.ignore_error:
            return
        found = _effective(context, _find_leaks(context))
        shown = f"`{' '.join(copy.logical.split())}`"
        note = "report only: dopt edits the Dockerfile and does not write .dockerignore yet"
        if context.ignore is None:
            lines = list(dict.fromkeys([leak.line for leak in _baseline(context)] + [leak.line for leak in found]))
            present = _describe(found)
            message = (
                f"{shown} sends the whole build context and there is no .dockerignore"
                f"{f' ({present})' if present else ''}; create .dockerignore with these lines: "
                f"{_lines(lines)} ({note})"
            )
            yield self.at_instruction(ctx, copy, message)
            return
        if not found:
            return
        name = context.ignore_path.name if context.ignore_path else ".dockerignore"
        message = (
            f"{shown} sends the whole build context and {name} lets in {_describe(found)}; append these lines to "
            f"{name}: {_lines([leak.line for leak in found])} ({note})"
        )
        yield self.at_instruction(ctx, copy, message)


def _describe(leaks: list[_Leak]) -> str:
    parts = []
    for leak in leaks:
        examples = ", ".join(leak.paths[:2])
        parts.append(f"{leak.what}: {examples}" if examples else leak.what)
    return "; ".join(parts)


def _lines(lines: list[str]) -> str:
    return " ".join(f"`{line}`" for line in lines)
