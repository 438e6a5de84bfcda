"""DO607 static-site-multi-stage: build a front end with Node in a stage, serve the files with nginx.

## What it does
Finds a single-stage Dockerfile on a node image that runs the ``build`` script and then only
serves the result with a static-file server (``serve -s build``, ``npx http-server dist``, or an
``npm start`` whose script does that) and rewrites it into a build stage (the original steps) and
a runtime stage on nginx (template ``static.toml``: ``node:18`` -> ``nginx:stable``) that copies
the built folder to nginx's document root. When the server listened on another port than 80 or
served a single-page app (``serve -s``: unknown paths get ``index.html``), the runtime stage
writes an nginx configuration that does the same, so EXPOSE and published ports keep working.
The served folder comes from the server's command line, else from the front-end tool's default
(``react-scripts`` -> ``build``, ``vite`` -> ``dist``).

ENV, ARG, WORKDIR, LABEL, EXPOSE, VOLUME, STOPSIGNAL and HEALTHCHECK are kept; the command
becomes nginx's and a USER of the original is not kept (the nginx image starts as root and
runs its workers as ``nginx``). Nothing is converted when the served folder cannot be found.

## Why
The files of a built front end are a few MB; the node image with node_modules is often more
than 1 GB. nginx serves static files faster, with caching headers and compression.

## Example
```dockerfile
FROM node:18
WORKDIR /app
COPY . .
RUN npm ci && npm run build
EXPOSE 3000
CMD ["npx", "serve", "-s", "build", "-l", "3000"]
```
becomes
```dockerfile
FROM node:18 AS build
WORKDIR /app
COPY . .
RUN npm ci && npm run build

FROM nginx:stable
WORKDIR /app
RUN printf 'server {\\n    listen 3000;\\n ...' > /etc/nginx/conf.d/default.conf
COPY --from=build /app/build /usr/share/nginx/html
EXPOSE 3000
CMD ["nginx", "-g", "daemon off;"]
```

## Fix safety
Unsafe: another web server answers: response headers, directory listings, error pages and
the handling of paths that are not files can differ from the Node server's.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from dopt.transforms._multistage import (
    NPM_CLIENTS,
    Analysis,
    MultiStageRule,
    Plan,
    RuntimeCommand,
    RuntimeImage,
    expand_npm_scripts,
    first_operand,
    instruction_commands,
    join_path,
    npm_script_name,
    package_json,
)
from dopt.transforms.multi_stage_node import dependencies, node_installs


class StaticSiteMultiStage(MultiStageRule):
    code = "DO607"
    name = "static-site-multi-stage"
    summary = "Single-stage front-end build served by Node: nginx can serve the built files"
    ecosystem = "static"
    priority = 10

    def _server(self, analysis: Analysis) -> RuntimeCommand | None:
        """The static-file server the container runs (through npx or an npm script)."""
        servers = analysis.templates["static"].section.get("servers", {})
        scripts = dependencies(package_json(analysis), "scripts")
        found = None
        for ins in analysis.instructions_named("CMD", "ENTRYPOINT"):
            commands = list(expand_npm_scripts(instruction_commands(ins), scripts))
            for command in commands:
                name = posixpath.basename(command.name)
                if name == "npx" and command.args:
                    args = [a for a in command.args if not a.startswith("-")]
                    rest = list(command.args[command.args.index(args[0]) + 1 :]) if args else []
                    command = RuntimeCommand(args[0] if args else "", command.origin, tuple(rest))
                    name = command.name
                if name in servers:
                    found = command
                elif name not in ("npm", "yarn", "pnpm", "npx", "exec") and npm_script_name(command) is None:
                    return None  # the container runs something else too
        return found

    def _builds_assets(self, analysis: Analysis) -> bool:
        for client in NPM_CLIENTS:
            for _, inv in analysis.invocations(client):
                words = [w.value for w in inv.command.words[inv.program_index + 1 :] if w.value]
                if words[:1] == ["build"] or words[:2] == ["run", "build"] or words[:2] == ["run-script", "build"]:
                    return True
        return False

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        return bool(node_installs(analysis)) and self._builds_assets(analysis) and self._server(analysis) is not None

    def links_system_libraries(self, analysis: Analysis, plan: Plan) -> bool:
        return False

    def runtime_commands(self, analysis: Analysis, plan: Plan) -> Iterator[RuntimeCommand]:
        for ins in analysis.instructions_named("HEALTHCHECK"):
            yield from instruction_commands(ins)

    def runtime_available(self, name: str, analysis: Analysis, plan: Plan) -> bool | None:
        return True if name in ("curl", "nginx", "sh", "bash") else None

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        settings = analysis.templates["static"].section
        server = self._server(analysis)
        assert server is not None
        options: dict[str, Any] = settings.get("servers", {}).get(posixpath.basename(server.name), {})
        folder = first_operand(server, [str(o) for o in options.get("value-options", ())])
        if folder is None:
            pj = package_json(analysis) or {}
            deps = {**dependencies(pj, "dependencies"), **dependencies(pj, "devDependencies")}
            folder = next((str(d) for tool, d in settings.get("build-dirs", {}).items() if tool in deps), None)
        install_dir = node_installs(analysis)[-1][0].workdir
        served = join_path(install_dir or analysis.final_workdir, folder) if folder else None
        if served is None:
            plan.problem("dopt cannot tell which folder the static server serves")
            return
        port = self._port(server, options, analysis)
        spa = any(a in [str(o) for o in options.get("spa", ())] for a in server.args)
        html = str(settings.get("html-dir") or "/usr/share/nginx/html")
        if port != int(settings.get("default-port") or 80) or spa:
            config = str(settings.get("config", "")).format(port=port, fallback="/index.html" if spa else "=404")
            path = str(settings.get("config-path") or "/etc/nginx/conf.d/default.conf")
            plan.setup.append(f"RUN printf '{config}' > {path}")
            plan.notes.append(
                f"configures nginx to listen on {port}" + (" with index.html for unknown paths" if spa else "")
            )
        why = f"the built site, served by nginx instead of {posixpath.basename(server.name)}"
        plan.copy(served, why, analysis.end, dest=html)
        plan.replace_final = ['CMD ["nginx", "-g", "daemon off;"]']
        if analysis.instructions_named("USER"):
            plan.drop_user = True
            plan.notes.append("runs nginx as the nginx image does instead of the original USER")

    def _port(self, server: RuntimeCommand, options: dict[str, Any], analysis: Analysis) -> int:
        args = list(server.args)
        for i, arg in enumerate(args):
            for option in options.get("port", ()):
                value = None
                if arg == option and i + 1 < len(args):
                    value = args[i + 1]
                elif arg.startswith(f"{option}="):
                    value = arg.split("=", 1)[1]
                if value:
                    digits = re.search(r"([0-9]+)$", value)
                    if digits:
                        return int(digits.group(1))
        for ins in analysis.instructions_named("EXPOSE"):
            digits = re.match(r"([0-9]+)", ins.values[0]) if ins.values else None
            if digits:
                return int(digits.group(1))
        return int(options.get("default-port") or 80)
