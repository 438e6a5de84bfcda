"""DO217 apk-pin: name a version for each package `apk add` installs.

## What it does
Reports `apk add` commands naming packages without a version constraint (`curl` rather than
`curl=8.5.0-r0` or `curl~8.5`). `.apk` files count as pinned, and the name given to
`--virtual`/`-t` is not a package. Report only, and **off by default**: enable it with
`extend-select = ["DO217"]`.

## Why
Without a version, each rebuild installs whatever the repository has that day. Pinning makes
builds reproducible, but Alpine keeps only the latest version of each package in a branch, so an
exact pin breaks the build on the next update; `~` (same minor version) is the usual compromise.
This is a policy choice without a fix dopt could make, hence opt-in (hadolint's DL3018 is on by
default).

## Example
```dockerfile
RUN apk add --no-cache curl
```
pinned:
```dockerfile
RUN apk add --no-cache curl~8.5
```

Same as hadolint's DL3018.
"""

from __future__ import annotations

from collections.abc import Sequence

from dopt.optimizer.shell import Invocation, Word
from dopt.transforms._packages import PinRule


class ApkPin(PinRule):
    code = "DO217"
    name = "apk-pin"
    summary = "`apk add` without package versions (opt-in)"
    hadolint = "DL3018"
    default_enabled = False

    programs = ("apk",)
    actions = ("add",)
    example = "`package=version` or `package~minor`"

    def unpinned(self, inv: Invocation, operands: Sequence[Word]) -> list[str]:
        return [
            w.value
            for w in operands
            if w.value and not any(c in w.value for c in "=~<>") and not w.value.endswith(".apk")
        ]
