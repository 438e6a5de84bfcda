"""DO215 apt-pin: name a version for each package `apt-get install` installs.

## What it does
Reports `apt-get install` (and `apt install`) commands naming packages without a version
(`curl` rather than `curl=7.88.1-10+deb12u5`). Local `.deb` files and `package/release` forms
count as pinned. Report only, and **off by default**: enable it with `extend-select = ["DO215"]`.

## Why
Without a version, each rebuild installs whatever the mirror has that day, so two builds of the
same Dockerfile can differ. Pinning makes builds reproducible, but it is a policy choice with a
cost: Debian removes superseded versions from its mirrors, so a pinned build breaks as soon as a
security update is published and the pin must be bumped. That is why this rule, unlike
hadolint's DL3008 (on by default there), is opt-in, and why it has no fix: only you can choose
the version.

## Example
```dockerfile
RUN apt-get update && apt-get install -y curl
```
pinned:
```dockerfile
RUN apt-get update && apt-get install -y curl=7.88.1-10+deb12u5
```

Same as hadolint's DL3008.
"""

from __future__ import annotations

from collections.abc import Sequence

from dopt.optimizer.shell import Invocation, Word
from dopt.transforms._packages import APT, PinRule


class AptPin(PinRule):
    code = "DO215"
    name = "apt-pin"
    summary = "`apt-get install` without package versions (opt-in)"
    hadolint = "DL3008"
    default_enabled = False

    programs = APT
    actions = ("install",)
    example = "`package=version`"

    def unpinned(self, inv: Invocation, operands: Sequence[Word]) -> list[str]:
        return [
            w.value
            for w in operands
            if w.value and "=" not in w.value and "/" not in w.value and not w.value.endswith(".deb")
        ]
