"""DO603 python-multi-stage: install Python packages into a virtualenv in a stage, run on -slim.

## What it does
Finds a single-stage Dockerfile on a python image and rewrites it into a build stage (the original
steps, with a virtualenv created before the first install of the application's packages) and a
runtime stage on the ``-slim`` variant (template ``python.toml``: ``python:3.11`` ->
``python:3.11-slim``) that copies the virtualenv and the application folders. Both stages set
``VIRTUAL_ENV`` and put its ``bin`` first on ``PATH``, so ``pip``, ``python`` and the packages'
commands (``gunicorn``, ``flask`` ...) are the virtualenv's. pip, ``python -m pip``, poetry,
pipenv, pdm and ``uv pip`` install into the active virtualenv; ``uv sync`` keeps its project
``.venv`` (copied with the application); a virtualenv the Dockerfile creates itself is used
as it is; ``pip install --user`` copies the user's ``~/.local``, ``--target``/``--prefix`` their
folder.

Packages compiled from source (C extensions: the application's own or a dependency without a
wheel) are built in the full image, which has the compilers; the runtime stage gets the runtime
libraries they link: those of the ``-dev`` packages the Dockerfile installed (``libpq-dev`` ->
``libpq5``), and those of requirements known to build against a library of the full image
(``psycopg2`` -> ``libpq5``). System packages installed for the application itself (``curl``,
``ffmpeg``) are installed again. ENV, ARG, WORKDIR, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL,
HEALTHCHECK, ENTRYPOINT and CMD are kept, users are created again.

Nothing is converted when the application runs a compiler at run time (``subprocess.run(["gcc",
...])``, ``CMD`` running ``make``), installs into the system interpreter in a way a virtualenv
cannot capture, or copies itself into a system folder; the finding says why.

## Why
The full python image is about 1 GB of compilers, headers and tools; the slim one about 130 MB.
The virtualenv carries exactly the installed packages, without pip's cache or build files.

## Example
```dockerfile
FROM python:3.11
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
```
becomes
```dockerfile
FROM python:3.11 AS build
WORKDIR /app
COPY . .
RUN python -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"
RUN pip install -r requirements.txt

FROM python:3.11-slim
WORKDIR /app
ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
CMD ["python", "app.py"]
```

## Fix safety
Unsafe: the runtime image has no compilers, no -dev libraries and fewer system tools and
libraries than the full image; a package that loads a system library dopt does not know about,
or code that starts such a tool, fails at run time.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Iterator

from dopt.optimizer.shell import Invocation
from dopt.transforms._multistage import (
    Analysis,
    MultiStageRule,
    Plan,
    Position,
    RunStep,
    RuntimeCommand,
    RuntimeImage,
    app_dirs,
    instruction_commands,
    join_path,
    matches_any,
    operands,
    option_value,
)

_PYTHONS = re.compile(r"python[0-9.]*|pip[0-9.]*")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PYTHON2 = re.compile(r"python:2(?:[.-]|$)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class PythonMultiStage(MultiStageRule):
    code = "DO603"
    name = "python-multi-stage"
    summary = "Single-stage Python build: the image ships compilers and build headers"
    ecosystem = "python"
    priority = 70

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return True  # any single-stage file on a python image

    def runtime_available(self, name: str, analysis: Analysis, plan: Plan) -> bool | None:
        if _PYTHONS.fullmatch(name):
            return True
        return None

    def runtime_commands(self, analysis: Analysis, plan: Plan) -> Iterator[RuntimeCommand]:
        yield from MultiStageRule.runtime_commands(self, analysis, plan)

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        settings = analysis.templates["python"].section
        installers = {str(n) for n in settings.get("installers", ())}
        venv, venv_at = self._existing_venv(analysis) or (None, analysis.end)
        first_app_install: RunStep | None = None
        first_install: RunStep | None = None
        user_site: list[tuple[str, Position]] = []
        folders: list[tuple[str, Position]] = []
        uv_project = False
        for step in analysis.runs:
            for inv in step.invocations():
                kind = self._install_kind(inv, installers)
                if kind is None:
                    continue
                first_install = first_install or step
                if kind == "tool":
                    continue
                word = inv.command.words[inv.start_index].value or ""
                if "/" in word and not (venv and word.startswith(venv + "/")):
                    plan.problem(f"`{word}` is called by path: its packages go to that interpreter, not a virtualenv")
                if inv.program == "pip" and inv.subcommand == "install":
                    if inv.has_option("--user"):
                        home = "/root" if step.user in (None, "root", "0") else f"/home/{step.user}"
                        user_site.append((f"{home}/.local", step.position(inv.command)))
                        continue
                    target = option_value(inv, "-t", "--target", "--prefix")
                    if target:
                        resolved = join_path(step.workdir, target)
                        if resolved:
                            folders.append((resolved, step.position(inv.command)))
                        continue
                    if inv.has_option("--root"):
                        plan.problem("`pip install --root` installs into a system tree dopt cannot separate")
                if (
                    inv.program == "uv"
                    and inv.subcommand == "pip"
                    and "--system" in (w.value for w in inv.command.words)
                ):
                    plan.problem("`uv pip install --system` installs into the system interpreter, not a virtualenv")
                if inv.program == "uv" and inv.subcommand == "sync":
                    uv_project = True
                    continue
                first_app_install = first_app_install or step
        if plan.problems:
            return
        created = False
        if venv is None and first_app_install is not None:
            if _PYTHON2.match(analysis.image):
                plan.problem("Python 2 has no venv module to install the packages into a virtualenv")
                return
            venv = str(settings.get("venv") or "/opt/venv")
            needs_tools = any(
                posixpath.basename(c.name) in installers
                for ins in analysis.instructions_named("CMD", "ENTRYPOINT")
                for c in instruction_commands(ins)
            )
            where = (first_install if needs_tools and first_install else first_app_install).index
            env_line = f'ENV VIRTUAL_ENV={venv} PATH="{venv}/bin:$PATH"'
            plan.insert_before(where, f"RUN python -m venv {venv}")
            plan.insert_before(where, env_line)
            plan.runtime_env.append(env_line)
            venv_at = (where, -1)
            created = True
        if venv is not None:
            plan.copy(venv, "the virtualenv with the installed packages", venv_at)
            if created:
                plan.notes.append(f"creates the virtualenv {venv} before the first install and puts it on PATH")
        for path, at in user_site:
            plan.copy(path, "packages installed with pip --user", at)
        for path, at in folders:
            plan.copy(path, "packages installed with pip --target/--prefix", at)
        for folder in app_dirs(analysis, plan):
            label = "the application" + (" and its .venv" if uv_project else "")
            plan.copy(folder.path, "a file the build copied there" if folder.single else label, folder.at)
        if image.full and plan.manager in ("apt", "apk"):
            self._requirement_libraries(analysis, image, plan)

    def _existing_venv(self, analysis: Analysis) -> tuple[str, Position] | None:
        """A virtualenv the Dockerfile creates itself, and where."""
        for step in analysis.runs:
            for command in step.commands():
                words = [w.value for w in command.words]
                if not words or words[0] is None:
                    continue
                name = posixpath.basename(words[0])
                target = None
                if _PYTHONS.fullmatch(name) and "-m" in words:
                    i = words.index("-m")
                    if i + 1 < len(words) and words[i + 1] in ("venv", "virtualenv"):
                        rest = [w for w in words[i + 2 :] if w and not w.startswith("-")]
                        target = rest[0] if rest else None
                elif name == "virtualenv" or (name == "uv" and words[1:2] == ["venv"]):
                    rest = [w for w in words[1:] if w and not w.startswith("-") and w != "venv"]
                    target = rest[0] if rest else (".venv" if name == "uv" else None)
                path = join_path(step.workdir, target) if target else None
                if path:
                    return path, step.position(command)
        return None

    def _install_kind(self, inv: Invocation, installers: set[str]) -> str | None:
        """'app' for an install of the application's packages, 'tool' for installers only, else None."""
        program, sub = inv.program, inv.subcommand
        if program == "pip" and sub == "install":
            ops = [v for v in operands(inv) if v]
            if inv.has_option("-r", "--requirement", "-e", "--editable"):
                return "app"
            names = [_canonical(m.group(1)) for v in ops if (m := _NAME.match(v))]
            if ops and all(n in installers for n in names) and len(names) == len(ops):
                return "tool"
            return "app" if ops else None
        if program in ("poetry", "pdm") and sub in ("install", "sync", "add"):
            return "app"
        if program == "pipenv" and sub in ("install", "sync"):
            return "app"
        if program == "uv" and sub in ("sync", "pip"):
            return "app"
        if program in ("python", "python3") or _PYTHONS.fullmatch(program):
            words = [w.value for w in inv.command.words]
            if "setup.py" in " ".join(w or "" for w in words) and "install" in words:
                return "app"
        return None

    def _requirement_libraries(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        """Requirements built from source against a library of the full image need its runtime package."""
        settings = analysis.templates["python"].section
        tables = settings.get("requirement-packages", {})
        if not any(tables.get(r) for r in image.release.split("|")) or not analysis.files.available:
            return
        patterns = [str(p) for p in settings.get("requirement-files", ())]
        names: set[str] = set()
        for path in analysis.files.files("", {"node_modules", ".git", ".venv", "venv"}):
            if not matches_any(path, patterns):
                continue
            text = analysis.files.read_text(path) or ""
            names |= _requirement_names(path, text)
        requirements = {req for r in image.release.split("|") for req in tables.get(r) or {}}
        for requirement in sorted(requirements):
            if _canonical(requirement) not in names:
                continue
            packages, differs = image.per_release(tables, requirement)
            if differs:
                plan.problem(f"{requirement} links a library when built from source, and {differs}")
            elif packages:
                plan.add_packages(packages, f"{requirement} links them when built from source")


def _requirement_names(path: str, text: str) -> set[str]:
    names: set[str] = set()
    if path.endswith(".toml") or posixpath.basename(path) == "Pipfile":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return names
        project = data.get("project", {})
        for dep in project.get("dependencies", []) if isinstance(project, dict) else []:
            if isinstance(dep, str) and (m := _NAME.match(dep)):
                names.add(_canonical(m.group(1)))
        poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
        for table in (poetry.get("dependencies", {}), data.get("packages", {})):
            if isinstance(table, dict):
                names |= {_canonical(k) for k in table}
        return names
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and (m := _NAME.match(line)):
            names.add(_canonical(m.group(1)))
    return names
