"""DO601 go-multi-stage: build Go programs in a stage and ship only the binary.

## What it does
Finds a single-stage Dockerfile on a golang image that runs ``go build`` or ``go install`` and
rewrites it into a build stage (the original steps, ``FROM golang:... AS build``) and a runtime
stage that copies the binary, the CA bundle and the files of the context the program may read
(templates, static assets, migrations: everything copied except ``*.go``, ``go.mod`` ...).

When the build context has no ``import "C"`` in its ``.go`` files and ``go.mod`` requires no
module known to need cgo, the binary is built static: the build stage sets ``ENV CGO_ENABLED=0``
and compiles the standard library once (``RUN go build std``) ahead of the first COPY, so that
layer stays cached and a code change rebuilds only the program, and the runtime stage is the
template's ``static-runtime`` (``go.toml``: ``scratch``, an image of a few MB). Unless the file
sets ``GOFLAGS`` itself, the build also links without the symbol table and debug information
(``GOFLAGS=-ldflags=-s``, a third of the binary; a ``-ldflags`` of the build's own still wins). Otherwise cgo stays
as it is and the runtime is the slim Debian of the same release (``golang:1.19-bookworm`` ->
``debian:bookworm-slim``; a tag naming no release may have been built on bookworm or trixie, so
the newer ``debian:trixie-slim``, whose C library runs programs linked on either): the binary links
its C library, and the runtime stage gets the runtime packages of the ``-dev`` packages the build
installed (converted only when both possible releases name them alike). A static binary on scratch has no shell, no
user database and no zone files: a shell-form CMD, a USER by name or ``time.LoadLocation`` without
``import _ "time/tzdata"`` leave the file unconverted, with the reason in the finding.

ENV, ARG, WORKDIR, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT and CMD are
kept, users the build created are created again. Nothing is converted when the container runs
the Go toolchain (``go run`` in CMD, ``exec.Command("go", ...)`` in the code), or when the rule
cannot tell where the binary is or what else the build wrote: the finding then says why.

## Why
The golang image is about 1 GB (compiler, module and build caches, sources); the program needs
a few MB. A smaller image pulls and starts faster and carries far less to patch.

## Example
```dockerfile
FROM golang:1.19
WORKDIR /app
COPY . .
RUN go build -o server .
EXPOSE 8080
CMD ["./server"]
```
becomes
```dockerfile
FROM golang:1.19 AS build
WORKDIR /app
ENV CGO_ENABLED=0
ENV GOFLAGS=-ldflags=-s
RUN go build std
COPY . .
RUN go build -o server .

FROM scratch
WORKDIR /app
COPY --from=build /app/server /app/server
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
EXPOSE 8080
CMD ["./server"]
```

## Fix safety
Unsafe: the runtime image no longer has the Go toolchain, git, a compiler or the sources, and
has a different set of system files; anything the program uses from the build image that the
analysis cannot see (a tool started with a computed name, a file read by absolute path) is gone.
"""

from __future__ import annotations

import posixpath
import re

from dopt.optimizer.shell import Invocation
from dopt.transforms._multistage import (
    Analysis,
    MultiStageRule,
    Plan,
    Position,
    RunStep,
    RuntimeImage,
    add_to_path,
    arguments,
    command_dir,
    copy_data_files,
    copy_runtime_files,
    env_assignments,
    instruction_commands,
    join_path,
)

_IMPORT_C = re.compile(r'(?m)^\s*import\s+"C"')
_IMPORT_BLOCK = re.compile(r"(?ms)^\s*import\s*\((.*?)\)")
_C_LINE = re.compile(r'(?m)^\s*"C"\s*(?://.*)?$')
_MODULE = re.compile(r"(?m)^\s*module\s+(\S+)")
_LOAD_LOCATION = re.compile(r"\btime\.LoadLocation\(")
_TZDATA = re.compile(r'"time/tzdata"')


def uses_cgo(analysis: Analysis, cgo_modules: tuple[str, ...]) -> bool | None:
    """Whether the code needs cgo; None when the context is unknown."""
    if not analysis.files.available:
        return None
    for _, text in analysis.source_files((".go",), skip=()):
        if _IMPORT_C.search(text) or any(_C_LINE.search(m.group(1)) for m in _IMPORT_BLOCK.finditer(text)):
            return True
    go_mod = analysis.manifest("go.mod") or ""
    return any(module in go_mod for module in cgo_modules)


class GoMultiStage(MultiStageRule):
    code = "DO601"
    name = "go-multi-stage"
    summary = "Single-stage Go build: the image ships the Go toolchain"
    ecosystem = "go"
    priority = 30

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return bool(analysis.invocations("go", "build", "install"))

    def links_system_libraries(self, analysis: Analysis, plan: Plan) -> bool:
        return not plan.static

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        template = analysis.templates["go"]
        settings = template.section
        builds = analysis.invocations("go", "build", "install")
        cgo = uses_cgo(analysis, tuple(str(m) for m in settings.get("cgo-modules", ())))
        configured = analysis.env_value("CGO_ENABLED")
        inline = [
            step
            for step, inv in builds
            if "CGO_ENABLED" in env_assignments(step.text(inv.command.start, inv.command.end))
        ]
        static = configured == "0" or bool(inline and all("CGO_ENABLED=0" in s.ins.args for s in inline))
        # A static build only pays off on a runtime without glibc (scratch, distroless): on the same
        # Debian it gains nothing and, without cgo's prebuilt standard library, slows every rebuild.
        wants_static = plan.allow_static and image.variant("static-runtime") != image.runtime
        if cgo is False and configured is None and not inline and wants_static:
            # Ahead of the first COPY, so the standard library compiled for static builds stays in a
            # cached layer and a change to the code rebuilds only the program.
            at = min([builds[0][0].index, *(c.index for c in analysis.copies)])
            plan.insert_before(at, "ENV CGO_ENABLED=0")
            plan.notes.append('sets CGO_ENABLED=0 for the build (no `import "C"` in the context): a static binary')
            if analysis.env_value("GOFLAGS") is None and not any(
                "GOFLAGS" in env_assignments(step.text(inv.command.start, inv.command.end)) for step, inv in builds
            ):
                # -s leaves out the symbol table and debug information (about a third of the binary);
                # a -ldflags of the build's own still wins over GOFLAGS.
                plan.insert_before(at, "ENV GOFLAGS=-ldflags=-s")
                plan.notes.append(
                    "links without the symbol table and debug information (GOFLAGS=-ldflags=-s); compiles the "
                    "standard library for the static build once, before the sources are copied"
                )
                # Only without flags of the file's own: `-mod=vendor` outside the module would fail it.
                plan.insert_before(at, "RUN go build std")
            static = True
        elif cgo:
            plan.notes.append('keeps cgo (the code imports "C" or needs a cgo module): the binary links glibc')
        plan.static = static
        if static:
            plan.runtime_image = image.variant("static-runtime")
            if plan.runtime_image != image.runtime:
                plan.manager = str(image.get("static-packages") or _manager_of(plan.runtime_image, plan.manager))
        binaries: list[tuple[str, Position]] = []
        for step, inv in builds:
            binary = self._binary(analysis, step, inv, settings)
            if binary is not None:
                binaries.append((binary, step.position(inv.command)))
        if not binaries:
            binaries = [(path, analysis.end) for path in self._from_command(analysis)]
        if not binaries:
            plan.problem("dopt cannot tell where `go build` puts the binary (no -o and no go.mod in the context)")
            return
        for binary, at in binaries:
            plan.artifacts.append(binary)
            plan.copy(binary, "the Go binary", at)
        bin_dir = str(settings.get("bin-dir") or "/go/bin")
        in_bin = [posixpath.basename(b) for b, _ in binaries if posixpath.dirname(b) == bin_dir]
        if in_bin:
            add_to_path(analysis, plan, bin_dir, in_bin)
        if not copy_data_files(analysis, plan, template.list("source-files")):
            plan.notes.append("no build context to look at: copies no data files, only the binary")
        copy_runtime_files(analysis, plan)
        texts = [t for _, t in analysis.source_files((".go",))]
        if any(_LOAD_LOCATION.search(t) for t in texts) and not any(_TZDATA.search(t) for t in texts):
            package = str(settings.get("tzdata-package") or "tzdata")
            if plan.manager != "none":
                plan.add_packages([package], "the program loads time zones with time.LoadLocation")
            else:
                plan.problem(
                    f"the program loads time zones with time.LoadLocation and {plan.runtime_image} has none: "
                    'embed them (import _ "time/tzdata") or set a static-runtime with zone files in the template'
                )

    def _binary(self, analysis: Analysis, step: RunStep, inv: Invocation, settings: dict) -> str | None:
        args = arguments(inv)
        if None in args.operands or (args.has("-o") and not args.value("-o")):
            return None  # a package or an output named by a variable
        packages = [v for v in args.operands if v is not None]
        name = self._name(analysis, packages)
        cwd = command_dir(step, inv.command)
        if inv.subcommand == "install":
            if not packages or (any("@" in p for p in packages) and not self._run_at_runtime(analysis, name)):
                return None  # a tool installed for the build
            gobin = analysis.env_value("GOBIN")
            gopath = analysis.env_value("GOPATH")
            folder = gobin or (posixpath.join(gopath, "bin") if gopath else str(settings.get("bin-dir") or "/go/bin"))
            return posixpath.join(folder, name) if name else None
        output = args.value("-o")
        if output is not None:
            if output.endswith("/"):
                return join_path(cwd, posixpath.join(output, name)) if name else None
            return join_path(cwd, output)
        if len([p for p in packages if not p.endswith(".go")]) > 1:
            return None  # several packages without -o: go build writes nothing
        return join_path(cwd, name) if name else None

    def _name(self, analysis: Analysis, packages: list[str]) -> str | None:
        files = [p for p in packages if p.endswith(".go")]
        if files:
            return posixpath.basename(files[0])[: -len(".go")]
        target = packages[0] if packages else "."
        target = target.split("@", 1)[0].rstrip("/")
        if target not in (".", "./") and not target.startswith("./..."):
            base = posixpath.basename(target)
            if re.fullmatch(r"v[0-9]+", base) and "/" in target:
                base = posixpath.basename(posixpath.dirname(target))
            return base or None
        go_mod = analysis.manifest("go.mod")
        match = _MODULE.search(go_mod or "")
        if match is None:
            return None
        module = match.group(1).strip('"')
        base = posixpath.basename(module)
        if re.fullmatch(r"v[0-9]+", base) and "/" in module:
            base = posixpath.basename(posixpath.dirname(module))
        return base

    def _run_at_runtime(self, analysis: Analysis, name: str | None) -> bool:
        return name is not None and any(
            posixpath.basename(c.name) == name
            for ins in analysis.instructions_named("CMD", "ENTRYPOINT")
            for c in instruction_commands(ins)
        )

    def _from_command(self, analysis: Analysis) -> list[str]:
        """The program CMD/ENTRYPOINT runs by path, when the build output cannot be named otherwise."""
        found = []
        for ins in analysis.instructions_named("ENTRYPOINT", "CMD"):
            for command in instruction_commands(ins):
                path = join_path(analysis.final_workdir, command.name) if "/" in command.name else None
                if path and analysis.context_file_for(path) is None:
                    found.append(path)
                break
        return found[:1]


def _manager_of(image: str, default: str) -> str:
    """How a static runtime image installs packages: distroless and scratch cannot."""
    if image == "scratch" or "distroless" in image:
        return "none"
    if image.startswith("alpine"):
        return "apk"
    return default
