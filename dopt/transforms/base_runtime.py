"""DO441 smaller-runtime-base: the final stage of a multi-stage build ships a build toolchain image.

## What it does
Opt-in. In a Dockerfile with several stages, reports a final stage built ``FROM`` a toolchain
image (``golang``, ``rust``, ``maven``, ``gradle``, ``eclipse-temurin`` JDK,
``mcr.microsoft.com/dotnet/sdk``) that runs none of the toolchain's programs itself: the build
happened in an earlier stage and the final one only needs to run the result. Where the runtime
counterpart is a mechanical rewrite, the fix makes it:

* ``eclipse-temurin:21-jdk`` → ``eclipse-temurin:21-jre`` (``21`` → ``21-jre``,
  ``21-jdk-jammy`` → ``21-jre-jammy``);
* ``mcr.microsoft.com/dotnet/sdk:8.0`` → ``mcr.microsoft.com/dotnet/aspnet:8.0`` (tags with at most
  two version parts: an SDK's patch number is not its runtime's).

For ``golang``, ``rust``, ``maven`` and ``gradle`` the message names the usual runtime bases
(distroless, ``debian:bookworm-slim``, a JRE image): which one fits depends on how the program was
built. ``python``/``node`` and the like are DO440's (-slim variants).

## Why
A toolchain image is hundreds of MB to over a GB of compilers, SDKs and caches; the program built
with it usually needs a runtime a fraction of that size. Less in the image means faster pulls and
fewer packages for scanners to flag and attackers to use.

## Example
```dockerfile
FROM eclipse-temurin:21-jdk AS build
RUN ./mvnw -q package
FROM eclipse-temurin:21-jdk
COPY --from=build /app/target/app.jar /app.jar
CMD ["java", "-jar", "/app.jar"]
```
The last FROM becomes ``FROM eclipse-temurin:21-jre``.

## Fix safety
Unsafe: the runtime image lacks the toolchain, and the application may use part of it at run
time (``jcmd``/``jstack`` from the JDK, ``dotnet`` SDK commands, a compiler for code generated at
run time), and an ASP.NET image is chosen for .NET because it also runs console apps. Build and
test the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.registry.reference import InvalidReferenceError, Reference, parse_reference, split_tag
from dopt.transforms._images import base_images, data, short_name, stage_activity


def runtime_reference(ref: Reference, entry: dict[str, Any]) -> Reference | None:
    """The mechanical runtime counterpart of ``ref``, when the data gives one."""
    tag = ref.tag
    if tag is None or ref.digest is not None:
        return None
    parsed = split_tag(tag)
    if not parsed.version:
        return None
    swap = entry.get("variant-swap")
    if isinstance(swap, dict):
        parts = parsed.variant.split("-") if parsed.variant else []
        if parts and parts[0] == swap["from"]:
            parts[0] = str(swap["to"])
        else:
            parts.insert(0, str(swap["to"]))
        version = tag[: len(tag) - len(parsed.variant) - 1] if parsed.variant else tag
        return ref.with_tag(f"{version}-{'-'.join(parts)}")
    image = entry.get("runtime-image")
    if isinstance(image, str):
        if parsed.specificity > int(entry.get("max-version-parts", 3)):
            return None
        try:
            return parse_reference(f"{image}:{tag}")
        except InvalidReferenceError:
            return None
    return None


class SmallerRuntimeBase(Rule):
    code = "DO441"
    name = "smaller-runtime-base"
    summary = "Final stage of a multi-stage build ships a toolchain image (JDK, SDK, golang); use a runtime base"
    fix_safety = FixSafety.UNSAFE
    default_enabled = False

    def check(self, ctx: Context) -> Iterator[Finding]:
        model = ctx.model
        final = model.final_stage
        if final is None or len(model.stages) < 2:
            return
        for base in base_images(ctx):
            if base.stage is not final or base.ref is None:
                continue
            entry = data()["runtime"].get(short_name(base.ref))
            if entry is None:
                continue
            swap = entry.get("variant-swap")
            if isinstance(swap, dict) and str(swap["to"]) in split_tag(base.ref.tag or "").variant.split("-"):
                continue  # already the runtime variant
            activity = stage_activity(final)
            if not activity.readable or activity.programs & set(entry.get("toolchain", [])):
                continue  # the final stage still builds with the toolchain
            message = (
                f"{base.where} is a build toolchain image, but the final stage runs none of its tools: "
                f"the built program needs only a runtime, such as {entry['advice']}"
            )
            new_ref = runtime_reference(base.ref, entry)
            edit = base.edit(str(new_ref)) if new_ref is not None and base.arg is None else None
            if new_ref is None or edit is None:
                yield self.finding(ctx, *base.span, message)
                continue
            yield self.finding(
                ctx, *base.span, f"{message}: {new_ref}", self.make_fix(f"use the runtime image {new_ref}", edit)
            )
