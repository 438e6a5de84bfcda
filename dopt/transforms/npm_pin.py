"""DO226 npm-pin: name a version for each package `npm install` adds.

## What it does
Reports `npm install <package>` commands (also `npm i`, `npm add`) naming packages without a
version (`nodemon` rather than `nodemon@3.1.0`). Scoped names (`@scope/name@1.2.3`), local
folders, tarballs and git URLs with a `#commit` count as pinned. `npm ci` and `npm install`
without names install from `package.json` and the lockfile and are not concerned. Report only,
and **off by default**: enable it with `extend-select = ["DO226"]`.

## Why
Without a version each rebuild installs the latest release. Better still, declare the package in
`package.json` so that the lockfile pins it. Pinning is a policy choice dopt cannot make for you,
hence opt-in and without a fix (hadolint's DL3016 is on by default).

## Example
```dockerfile
RUN npm install -g nodemon
```
pinned:
```dockerfile
RUN npm install -g nodemon@3.1.0
```

Same as hadolint's DL3016.
"""

from __future__ import annotations

from collections.abc import Sequence

from dopt.optimizer.shell import Invocation, Word
from dopt.transforms._packages import PinRule

GIT = ("git://", "git+ssh://", "git+http://", "git+https://", "github:")
PATHS = ("/", "./", "../", "~/")
TARBALLS = (".tar", ".tar.gz", ".tgz")


def pinned(spec: str) -> bool:
    if spec.startswith(GIT):
        return "#" in spec
    if spec.startswith(PATHS) or spec.endswith(TARBALLS) or "://" in spec:
        return True
    name = spec[1:] if spec.startswith("@") else spec
    return "@" in name


class NpmPin(PinRule):
    code = "DO226"
    name = "npm-pin"
    summary = "`npm install <package>` without a version (opt-in)"
    hadolint = "DL3016"
    default_enabled = False

    programs = ("npm",)
    actions = ("install", "i", "add")
    example = "`package@version`, or add it to package.json"

    def unpinned(self, inv: Invocation, operands: Sequence[Word]) -> list[str]:
        return [w.value for w in operands if w.value and not pinned(w.value)]
