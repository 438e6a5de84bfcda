"""DO605 rust-multi-stage: build Rust programs in a stage and ship only the binary.

## What it does
Finds a single-stage Dockerfile on a rust image that runs ``cargo build`` or ``cargo install`` and
rewrites it into a build stage (the original steps) and a runtime stage on a slim Debian of the
same release (template ``rust.toml``: ``rust:1.75-bookworm`` -> ``debian:bookworm-slim``; a tag
naming no release -> ``debian:trixie-slim``, whose glibc runs programs built on bookworm or trixie,
with runtime packages only where both releases name them alike) that copies the binary
(``target/release/<name>`` with the name from Cargo.toml, ``--bin``, ``--target`` and
``--target-dir`` taken into account, or
``$CARGO_HOME/bin/<name>`` for ``cargo install``), the CA bundle and the files of the context the
program may read. Crates that link a system library (``openssl-sys`` -> ``libssl3``, ``pq-sys`` ->
``libpq5``) and the ``-dev`` packages the Dockerfile installed get their runtime packages. ENV,
ARG, WORKDIR, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT and CMD are kept.

Nothing is converted when the container runs cargo or rustc, or when the binary cannot be found
(no Cargo.toml in the build context and no path in CMD); the finding says why.

## Why
The rust image with the registry and the target folder is well over 1 GB; a release binary is a
few MB on a 75 MB base.

## Example
```dockerfile
FROM rust:1.75
WORKDIR /app
COPY . .
RUN cargo build --release
CMD ["./target/release/api"]
```
becomes
```dockerfile
FROM rust:1.75 AS build
WORKDIR /app
COPY . .
RUN cargo build --release

FROM debian:trixie-slim
WORKDIR /app
COPY --from=build /app/target/release/api /app/target/release/api
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
CMD ["./target/release/api"]
```

## Fix safety
Unsafe: the runtime image has no toolchain, fewer shared libraries than the rust image and a
different set of system files; a library loaded at run time that dopt does not know about is
missing.
"""

from __future__ import annotations

import posixpath
import tomllib

from dopt.optimizer.shell import Invocation
from dopt.transforms._multistage import (
    Analysis,
    MultiStageRule,
    Plan,
    Position,
    RunStep,
    RuntimeImage,
    add_to_path,
    copy_data_files,
    copy_runtime_files,
    has_flag,
    instruction_commands,
    join_path,
    option_value,
)


class RustMultiStage(MultiStageRule):
    code = "DO605"
    name = "rust-multi-stage"
    summary = "Single-stage Rust build: the image ships the Rust toolchain and the target folder"
    ecosystem = "rust"
    priority = 40

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return bool(analysis.invocations("cargo", "build", "install"))

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        template = analysis.templates["rust"]
        settings = template.section
        manifest = self._manifest(analysis)
        made: dict[str, Position] = {}
        bin_dir = str(settings.get("bin-dir") or "/usr/local/cargo/bin")
        for step, inv in analysis.invocations("cargo", "build", "install"):
            for binary in self._binaries(analysis, step, inv, manifest, bin_dir):
                made.setdefault(binary, step.position(inv.command))
        if not made:
            made = dict.fromkeys(self._from_command(analysis), analysis.end)
        if not made:
            plan.problem("dopt cannot tell which binary cargo builds (no Cargo.toml in the build context)")
            return
        for binary, at in made.items():
            plan.artifacts.append(binary)
            plan.copy(binary, "the Rust binary", at)
        binaries = list(made)
        folder = posixpath.dirname(binaries[0])
        add_to_path(analysis, plan, folder, [posixpath.basename(b) for b in binaries if posixpath.dirname(b) == folder])
        if not copy_data_files(analysis, plan, template.list("source-files")):
            plan.notes.append("no build context to look at: copies no data files, only the binary")
        copy_runtime_files(analysis, plan)
        if image.full and manifest and plan.manager in ("apt", "apk"):
            tables = settings.get("crate-packages", {})
            crates: set[str] = set()
            for key in ("dependencies", "build-dependencies"):
                deps = manifest.get(key, {})
                if isinstance(deps, dict):
                    crates |= set(deps)
            for crate in sorted(crates):
                packages, differs = image.per_release(tables, crate)
                if differs:
                    plan.problem(f"the crate {crate} links a system library, and {differs}")
                elif packages:
                    plan.add_packages(packages, f"the crate {crate} links them")

    def _manifest(self, analysis: Analysis) -> dict | None:
        text = analysis.manifest("Cargo.toml")
        if text is None:
            return None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None

    def _binaries(
        self, analysis: Analysis, step: RunStep, inv: Invocation, manifest: dict | None, bin_dir: str
    ) -> list[str]:
        names = [option_value(inv, "--bin")] if option_value(inv, "--bin") else self._names(manifest)
        names = [n for n in names if n]
        if inv.subcommand == "install":
            root = option_value(inv, "--root")
            cargo_home = analysis.env_value("CARGO_HOME")
            folder = (
                join_path(step.workdir, root + "/bin")
                if root
                else (posixpath.join(cargo_home, "bin") if cargo_home else bin_dir)
            )
            if not has_flag(inv, "--path") and not any(w.value == "." for w in inv.operands):
                names = [n for n in (w.value for w in inv.operands) if n and self._run_at_runtime(analysis, n)]
            return [posixpath.join(folder, n) for n in names] if folder else []
        profile = "release" if has_flag(inv, "--release", "-r") else option_value(inv, "--profile") or "debug"
        target_dir = option_value(inv, "--target-dir") or analysis.env_value("CARGO_TARGET_DIR") or "target"
        triple = option_value(inv, "--target")
        parts = [target_dir, triple, profile] if triple else [target_dir, profile]
        folder = join_path(step.workdir, posixpath.join(*parts))
        return [posixpath.join(folder, n) for n in names] if folder else []

    def _names(self, manifest: dict | None) -> list[str]:
        if not manifest:
            return []
        bins = manifest.get("bin")
        if isinstance(bins, list) and bins:
            return [str(b.get("name")) for b in bins if isinstance(b, dict) and b.get("name")]
        package = manifest.get("package", {})
        return [str(package["name"])] if isinstance(package, dict) and package.get("name") else []

    def _run_at_runtime(self, analysis: Analysis, name: str) -> bool:
        return any(
            posixpath.basename(c.name) == name
            for ins in analysis.instructions_named("CMD", "ENTRYPOINT")
            for c in instruction_commands(ins)
        )

    def _from_command(self, analysis: Analysis) -> list[str]:
        for ins in analysis.instructions_named("ENTRYPOINT", "CMD"):
            for command in instruction_commands(ins):
                path = join_path(analysis.final_workdir, command.name) if "/" in command.name else None
                if path and "/target/" in path:
                    return [path]
                break
        return []
