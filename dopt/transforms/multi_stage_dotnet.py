"""DO606 dotnet-multi-stage: ``dotnet publish`` in a stage, run on the ASP.NET Core or .NET runtime.

## What it does
Finds a single-stage Dockerfile on the .NET SDK image that runs ``dotnet publish`` and rewrites it
into a build stage (the original steps) and a runtime stage on the runtime image of the same
version and variant (template ``dotnet.toml``: ``mcr.microsoft.com/dotnet/sdk:8.0`` ->
``mcr.microsoft.com/dotnet/aspnet:8.0``, or ``.../runtime:8.0`` when the project file uses
``Microsoft.NET.Sdk`` rather than ``Microsoft.NET.Sdk.Web``). The runtime stage copies the
publish folder (``-o``/``--output``), which holds the content files (appsettings, wwwroot) too.
ENV, ARG, WORKDIR, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT and CMD are
kept.

Nothing is converted when the container needs the SDK (``dotnet run``, ``dotnet watch``,
``dotnet ef``), or when the publish folder is not given with ``-o``; the finding says why.

## Why
The SDK image is about 800 MB; the ASP.NET Core runtime about 220 MB, and the NuGet cache and
the sources stay behind.

## Example
```dockerfile
FROM mcr.microsoft.com/dotnet/sdk:8.0
WORKDIR /src
COPY . .
RUN dotnet publish -c Release -o /app
WORKDIR /app
ENTRYPOINT ["dotnet", "Api.dll"]
```
becomes
```dockerfile
FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish -c Release -o /app
WORKDIR /app

FROM mcr.microsoft.com/dotnet/aspnet:8.0
WORKDIR /src
WORKDIR /app
COPY --from=build /app /app
ENTRYPOINT ["dotnet", "Api.dll"]
```

## Fix safety
Unsafe: the runtime image has no SDK (no ``dotnet build/run/ef``, no NuGet) and a smaller set of
system libraries; native dependencies dopt cannot see may be missing.
"""

from __future__ import annotations

import posixpath
import re

from dopt.transforms._multistage import (
    Analysis,
    MultiStageRule,
    Plan,
    RuntimeImage,
    instruction_commands,
    join_path,
    option_value,
)

_SDK = re.compile(r'<Project\s+Sdk="([^"]+)"')


class DotnetMultiStage(MultiStageRule):
    code = "DO606"
    name = "dotnet-multi-stage"
    summary = "Single-stage .NET build: the image ships the .NET SDK"
    ecosystem = "dotnet"
    priority = 60

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return bool(analysis.invocations("dotnet", "publish"))

    def links_system_libraries(self, analysis: Analysis, plan: Plan) -> bool:
        return False

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        template = analysis.templates["dotnet"]
        sdk_commands = {str(c) for c in template.section.get("sdk-commands", ())}
        for ins in analysis.instructions_named("CMD", "ENTRYPOINT"):
            for command in instruction_commands(ins):
                if posixpath.basename(command.name) == "dotnet" and command.args and command.args[0] in sdk_commands:
                    plan.problem(f"{ins.name} runs `dotnet {command.args[0]}`, which needs the SDK")
        if plan.problems:
            return
        for step, inv in analysis.invocations("dotnet", "publish"):
            output = option_value(inv, "-o", "--output")
            folder = join_path(step.workdir, output) if output else None
            if folder is None:
                plan.problem("`dotnet publish` has no -o/--output: dopt cannot tell where the published files go")
                return
            plan.copy(folder, "the published application", step.position(inv.command))
            plan.artifacts.append(folder)
        web = self._is_web(analysis)
        if web is False:
            plan.runtime_image = image.variant("console-runtime")
            plan.notes.append("uses the .NET runtime image: the project is not a web project")

    def _is_web(self, analysis: Analysis) -> bool | None:
        if not analysis.files.available:
            return None
        sdks = []
        for _, text in analysis.source_files((".csproj", ".fsproj", ".vbproj")):
            match = _SDK.search(text)
            if match:
                sdks.append(match.group(1))
        if not sdks:
            return None
        return any(s.endswith(".Web") or "Web" in s or s.endswith("Razor") for s in sdks)
