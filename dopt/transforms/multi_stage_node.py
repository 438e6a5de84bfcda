"""DO602 node-multi-stage: install and build Node.js applications in a stage, run them on -slim.

## What it does
Finds a single-stage Dockerfile on a node image that installs dependencies with npm, yarn or pnpm
(with or without a ``build`` script) and rewrites it into a build stage (the original steps) and a
runtime stage on the image's ``-slim`` variant (template ``node.toml``: ``node:18`` ->
``node:18-slim``). The build stage ends by dropping devDependencies: ``npm ci --omit=dev`` when
the Dockerfile installs with ``npm ci`` (the lockfile is known to match), otherwise
``npm prune --omit=dev``, ``yarn install --production`` or ``pnpm prune --prod``; native modules
compiled in the full image stay as they were built. The runtime stage copies the application
folders (the WORKDIR and every COPY destination, with node_modules and the build output).

devDependencies are kept when the container runs one at run time (``npm start`` running
``nodemon`` or ``ts-node``), and dropping them is skipped when package.json cannot be read. The
runtime keeps node, npm, npx and yarn, so ``CMD ["npm", "start"]`` works; globally installed
tools the container runs (``npm install -g pm2``) are installed again. ENV, ARG, WORKDIR, LABEL,
USER, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT and CMD are kept. Nothing is converted
when the container runs a compiler or node-gyp, or when something the build wrote cannot be
placed; the finding says why.

## Why
The full node image carries compilers, headers and version-control tools (about 1 GB); the slim
variant is about 200 MB. devDependencies (bundlers, test runners, type checkers) often weigh more
than the application.

## Example
With devDependencies in package.json,
```dockerfile
FROM node:18
WORKDIR /usr/src/app
COPY . .
RUN npm install
EXPOSE 3000
CMD ["npm", "start"]
```
becomes
```dockerfile
FROM node:18 AS build
WORKDIR /usr/src/app
COPY . .
RUN npm install
RUN npm prune --omit=dev

FROM node:18-slim
WORKDIR /usr/src/app
COPY --from=build /usr/src/app /usr/src/app
EXPOSE 3000
CMD ["npm", "start"]
```

## Fix safety
Unsafe: the runtime image lacks the compilers and tools of the full image and the
devDependencies; code that loads a devDependency at run time, or starts a tool the analysis
cannot see, breaks.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from dopt.optimizer.shell import Invocation
from dopt.transforms._multistage import (
    NPM_CLIENTS,
    Analysis,
    MultiStageRule,
    Plan,
    RunStep,
    RuntimeCommand,
    RuntimeImage,
    app_dirs,
    expand_npm_scripts,
    has_flag,
    instruction_commands,
    package_json,
)

INSTALL = {"npm": ("install", "i", "ci", "add", "isntall"), "yarn": ("install", "add"), "pnpm": ("install", "i", "add")}
_ALWAYS = frozenset({"node", "nodejs", "npm", "npx", "yarn", "yarnpkg", "corepack"})


def node_installs(analysis: Analysis) -> list[tuple[RunStep, Invocation]]:
    found = []
    for client in NPM_CLIENTS:
        for step, inv in analysis.invocations(client):
            if inv.subcommand in INSTALL[client] or (client == "yarn" and inv.subcommand is None):
                found.append((step, inv))
    return sorted(found, key=lambda pair: pair[0].index)


def is_global(inv: Invocation) -> bool:
    return has_flag(inv, "-g", "--global", "--location=global") or (
        inv.program == "yarn" and inv.subcommand == "global"
    )


def dependencies(pj: dict[str, Any] | None, key: str) -> dict[str, Any]:
    value = (pj or {}).get(key)
    return value if isinstance(value, dict) else {}


def node_runtime_commands(rule: MultiStageRule, analysis: Analysis, plan: Plan) -> Iterator[RuntimeCommand]:
    scripts = dependencies(package_json(analysis), "scripts")
    yield from expand_npm_scripts(MultiStageRule.runtime_commands(rule, analysis, plan), scripts)


class NodeMultiStage(MultiStageRule):
    code = "DO602"
    name = "node-multi-stage"
    summary = "Single-stage Node.js build: the image ships the full node image and devDependencies"
    ecosystem = "node"
    priority = 20

    def claims(self, analysis: Analysis, image: RuntimeImage) -> bool:
        if node_installs(analysis):
            return True
        return any(
            posixpath.basename(c.name) in _ALWAYS
            for ins in analysis.instructions_named("CMD", "ENTRYPOINT")
            for c in instruction_commands(ins)
        )

    def runtime_commands(self, analysis: Analysis, plan: Plan) -> Iterator[RuntimeCommand]:
        return node_runtime_commands(self, analysis, plan)

    def runtime_available(self, name: str, analysis: Analysis, plan: Plan) -> bool | None:
        if name in _ALWAYS or name in plan.provided:
            return True
        if name == "pnpm":
            return False
        pj = package_json(analysis)
        bins = analysis.templates["node"].section.get("bin-packages", {})
        package = bins.get(name, name)
        if package in dependencies(pj, "dependencies") or package in dependencies(pj, "devDependencies"):
            return True
        return None

    def plan(self, analysis: Analysis, image: RuntimeImage, plan: Plan) -> None:
        settings = analysis.templates["node"].section
        pj = package_json(analysis)
        installs = node_installs(analysis)
        local = [(s, i) for s, i in installs if not is_global(i)]
        for folder in app_dirs(analysis, plan):
            label = "the application with node_modules" if local else "the application"
            plan.copy(folder.path, "a file the build copied there" if folder.single else label, folder.at)
        if plan.problems:
            return
        commands = list(self.runtime_commands(analysis, plan))
        self._global_tools(analysis, plan, installs, commands)
        if not local:
            return
        dev = dependencies(pj, "devDependencies")
        if pj is None:
            plan.notes.append("keeps devDependencies (no package.json in the build context to check them)")
            return
        if not dev:
            return
        bins = settings.get("bin-packages", {})
        needed = sorted(
            {
                bins.get(posixpath.basename(c.name), posixpath.basename(c.name))
                for c in commands
                if bins.get(posixpath.basename(c.name), posixpath.basename(c.name)) in dev
            }
            | {c.args[0] for c in commands if posixpath.basename(c.name) == "npx" and c.args and c.args[0] in dev}
        )
        if needed:
            plan.notes.append(f"keeps devDependencies: the container runs {', '.join(needed)}")
            return
        step, inv = local[-1]
        prune = self._prune_command(analysis, inv, settings.get("prune", {}))
        if prune is None:
            plan.notes.append("keeps devDependencies (dopt knows no way to prune them for this package manager)")
            return
        line = f"RUN {prune}" if step.workdir == analysis.final_workdir else f"RUN cd {step.workdir} && {prune}"
        plan.builder_after.append(line)
        plan.notes.append(f"drops devDependencies in the build stage ({prune}): {', '.join(sorted(dev))}")

    def _prune_command(self, analysis: Analysis, inv: Invocation, prune: dict[str, str]) -> str | None:
        client = inv.program
        if client == "npm":
            return prune.get("npm-ci") if inv.subcommand == "ci" else prune.get("npm")
        if client == "yarn":
            if analysis.files.is_file(".yarnrc.yml") or analysis.files.is_file(".pnp.cjs"):
                return None  # Yarn 2+: `workspaces focus --production` needs a plugin
            has_lock = analysis.manifest("yarn.lock") is not None
            return prune.get("yarn") if has_lock else prune.get("yarn-nolock")
        return prune.get(client)

    def _global_tools(
        self,
        analysis: Analysis,
        plan: Plan,
        installs: list[tuple[RunStep, Invocation]],
        commands: list[RuntimeCommand],
    ) -> None:
        """Tools installed globally that the container runs are installed again in the runtime stage."""
        used = {posixpath.basename(c.name) for c in commands}
        bins = analysis.templates["node"].section.get("bin-packages", {})
        for step, inv in installs:
            if not is_global(inv):
                continue
            packages = [_bare(w.value or "") for w in inv.operands]
            wanted = [p for p in packages if p and (p in used or any(bins.get(u) == p for u in used))]
            if wanted:
                keep = [
                    w
                    for w in inv.command.words[inv.start_index :]
                    if w not in inv.operands or w.value == "add" or _bare(w.value or "") in wanted
                ]
                line = "RUN " + " ".join(step.text(w.start, w.end) for w in keep)
                if line not in plan.setup:
                    plan.setup.append(line)
                    plan.notes.append(f"installs the global tools the container runs again ({', '.join(wanted)})")
                plan.provided.update(used & ({*wanted} | {u for u in used if bins.get(u) in wanted}))
        if "pnpm" in used or "yarn" in used:
            for step, inv in analysis.invocations("corepack", "enable"):
                line = "RUN " + step.text(inv.command.words[inv.start_index].start, inv.command.end)
                if line not in plan.setup:
                    plan.setup.append(line)
                    plan.notes.append("enables corepack again: the container runs pnpm/yarn")
                plan.provided.update({"pnpm", "yarn"})


def _bare(spec: str) -> str:
    """``pm2@5`` -> ``pm2``, ``@scope/pkg@1`` -> ``@scope/pkg``."""
    head, at, _ = spec[1:].partition("@")
    return spec[0] + head if spec and at else spec
