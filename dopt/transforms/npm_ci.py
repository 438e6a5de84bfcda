"""DO223 npm-ci: install Node dependencies from the lockfile with `npm ci`.

## What it does
Rewrites `npm install` (or `npm i`) without package names to `npm ci`, but only when the
Dockerfile copies a lockfile (`package-lock.json` or `npm-shrinkwrap.json`) from the build context
into the directory where npm runs before that RUN. dopt reads that from the COPY/ADD instructions,
the WORKDIR in force and the build context itself (the file must exist and not be excluded by
`.dockerignore`). Commands with options `npm ci` does not share (`-g`, `--save*`,
`--no-package-lock`, `--prefix`, ...) or after a `cd` are left alone.

## Why
`npm install` resolves version ranges again and may install something else than the lockfile
says (and rewrite the lockfile inside the image). `npm ci` installs exactly the locked versions,
fails when `package.json` and the lockfile disagree instead of silently diverging, and is faster
because it skips resolution. Reproducible images need it.

## Example
```dockerfile
COPY package.json package-lock.json ./
RUN npm install
```
becomes
```dockerfile
COPY package.json package-lock.json ./
RUN npm ci
```

## Fix safety
Safe when the dependencies recorded at the top of the lockfile (lockfile version 2 or 3) are
exactly those of the copied `package.json`: then `npm ci` installs the tree `npm install` would
have kept. With an older lockfile, whose agreement dopt cannot check, the fix is unsafe. When the
two disagree, `npm ci` would fail, so there is no fix: update the lockfile with `npm install`
first. `npm ci` also deletes an existing `node_modules` before installing, which only matters if
the build context sends one (exclude it in `.dockerignore`).
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import (
    PackageRule,
    RunScript,
    copied_from_context,
    image_path,
    read_json,
    run_scripts,
    workdir_of,
)

LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")
# options `npm ci` accepts with the same meaning (value-taking ones as --name=value or with a value word)
COMPATIBLE = frozenset(
    {
        "--omit", "--include", "--production", "--only", "--ignore-scripts", "--no-audit", "--audit",
        "--no-fund", "--fund", "--loglevel", "--legacy-peer-deps", "--strict-peer-deps", "--no-optional",
        "--quiet", "-q", "--silent", "-s", "--no-progress", "--progress", "--prefer-offline", "--offline",
        "--registry", "--unsafe-perm", "--cache", "--foreground-scripts", "--install-links", "--verbose",
        "-d", "--dd", "--ddd", "--no-update-notifier", "--update-notifier", "--color", "--no-color",
        "--workspace", "-w", "--workspaces", "--include-workspace-root", "--engine-strict", "--force",
    }
)  # fmt: skip
DEPENDENCY_KEYS = ("dependencies", "devDependencies", "optionalDependencies")


def _options_compatible(inv: Invocation) -> bool:
    values = inv.value_options
    for words in (inv.options_before, inv.options_after):
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            value = word.value
            if value is None:
                return False
            name = value.split("=", 1)[0]
            if name not in COMPATIBLE:
                return False
            skip = name in values and "=" not in value
    return True


def lock_agreement(package: dict, lock: dict) -> bool | None:
    """True when the lockfile records exactly the dependencies of ``package``, False when it records
    others, None when the lockfile format does not say (lockfile version 1)."""
    root = lock.get("packages", {}).get("") if isinstance(lock.get("packages"), dict) else None
    if not isinstance(root, dict):
        return None
    return all((package.get(key) or {}) == (root.get(key) or {}) for key in DEPENDENCY_KEYS)


class NpmCi(PackageRule):
    code = "DO223"
    name = "npm-ci"
    summary = "`npm install` where a lockfile is copied in: `npm ci` installs exactly what it locks"
    fix_safety = FixSafety.SAFE

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            for inv in script.invocations("npm"):
                if inv.subcommand not in ("install", "i") or inv.operands or inv.end_of_options_index is not None:
                    continue
                if not _options_compatible(inv) or self._changes_directory(script, inv):
                    continue
                yield from self._finding(ctx, script, inv)

    @staticmethod
    def _changes_directory(script: RunScript, inv: Invocation) -> bool:
        return any(
            c.start < inv.command.start and c.name is not None and c.name.value in ("cd", "pushd")
            for c in script.shell.commands()
        )

    def _finding(self, ctx: Context, script: RunScript, inv: Invocation) -> Iterator[Finding]:
        workdir = workdir_of(ctx, script.ins)
        for lock_name in LOCKFILES:
            lock_file = copied_from_context(ctx, script.ins, image_path(workdir, lock_name))
            if lock_file is not None:
                break
        else:
            return
        package_file = copied_from_context(ctx, script.ins, image_path(workdir, "package.json"))
        package, lock = read_json(package_file), read_json(lock_file)
        if package is None or lock is None:
            return
        word = inv.subcommand_word
        assert word is not None
        agreement = lock_agreement(package, lock)
        if agreement is False:
            message = (
                f"`npm {word.value}` with a copied {lock_file.name} that does not match package.json: the image gets "
                "versions the lockfile does not record; update the lockfile (`npm install` locally), then use `npm ci`"
            )
            yield self.command_finding(ctx, script, inv.command, message, None)
            return
        safety = FixSafety.SAFE if agreement else FixSafety.UNSAFE
        fix = self.fix_or_none(
            f"use `npm ci` (installs {lock_file.name} exactly)", [script.replace_word(word, "ci")], safety
        )
        message = (
            f"`npm {word.value}` re-resolves versions although {lock_file.name} is copied in; `npm ci` installs "
            "exactly the locked versions, faster, and fails if the lockfile is stale"
        )
        yield self.command_finding(ctx, script, inv.command, message, fix)
