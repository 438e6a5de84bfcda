"""DO225 npm-omit-dev: keep development dependencies out of the final image.

## What it does
Adds `--omit=dev` to `npm ci` or `npm install` (without package names) in the stages that make up
the final image, unless development dependencies are already left out (`--omit=dev`,
`--production`, `--only=prod`, `NODE_ENV=production` or `NPM_CONFIG_OMIT`/`NPM_CONFIG_PRODUCTION`
set) or something after the install looks like it needs them: `npm run`, `npm test`, `npx`,
`node_modules/.bin`, or an `npm prune` that removes them later anyway.

## Why
`devDependencies` are test runners, linters, bundlers, type checkers: often most of
`node_modules`, and none of them run in production. In a multi-stage build the build stage keeps
them and the final stage installs with `--omit=dev`.

## Example
```dockerfile
FROM node:18
COPY package.json package-lock.json ./
RUN npm ci
CMD ["node", "server.js"]
```
becomes
```dockerfile
RUN npm ci --omit=dev
```

## Fix safety
Unsafe: only you know whether the application needs a package listed as a development
dependency at run time (a mistake that is easy to make and works until this fix), or whether
the start command runs a development tool (`nodemon`, `ts-node`). Requires npm 7 or later
(`--production` on npm 6).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    PackageRule,
    RunScript,
    env_value,
    in_final_image,
    later_instructions,
    option_values,
    run_scripts,
)

NEEDS_DEV = re.compile(r"\bnpm\s+(?:run|run-script|test|t|prune|exec|x)\b|\bnpx\b|node_modules/\.bin|\byarn\s+run\b")


class NpmOmitDev(PackageRule):
    code = "DO225"
    name = "npm-omit-dev"
    summary = "devDependencies installed into the final image"
    fix_safety = FixSafety.UNSAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            ins = script.ins
            if not in_final_image(ctx, ins) or self._production_env(ctx, script):
                continue
            for inv in script.invocations("npm"):
                if inv.subcommand not in ("ci", "install", "i", "clean-install") or inv.operands:
                    continue
                if self._omits_dev(inv) or inv.has_option("-g", "--global") or self._dev_used_later(ctx, script, inv):
                    continue
                word = inv.subcommand_word
                assert word is not None
                fix = self.fix_or_none(
                    f"add `--omit=dev` to `npm {word.value}`", [script.insert_after(word, " --omit=dev")]
                )
                message = (
                    f"`npm {word.value}` also installs devDependencies (test and build tools) into the final image; "
                    "if nothing at run time needs them, add `--omit=dev`"
                )
                yield self.command_finding(ctx, script, inv.command, message, fix)

    @staticmethod
    def _omits_dev(inv: Invocation) -> bool:
        if inv.has_option("--production"):
            return True
        if any("dev" in v for v in option_values(inv, "--omit")):
            return True
        return any(v.startswith("prod") for v in option_values(inv, "--only"))

    @staticmethod
    def _production_env(ctx: Context, script: RunScript) -> bool:
        if (env_value(ctx, script.ins, "NODE_ENV") or "").lower() == "production":
            return True
        variables = ctx.model.scope_of(script.ins).variables()
        return any(k.lower() in ("npm_config_omit", "npm_config_production") for k in variables)

    @staticmethod
    def _dev_used_later(ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if NEEDS_DEV.search(script.text[inv.command.end :]):
            return True
        source = ctx.document.source
        return any(
            other.name == "RUN" and NEEDS_DEV.search(source[other.start : other.end])
            for other in later_instructions(ctx, script.ins)
        )
