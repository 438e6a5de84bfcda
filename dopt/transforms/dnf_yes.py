"""DO230 dnf-yes: answer dnf's confirmation prompt with `-y`.

## What it does
Adds `-y` to `dnf install` (and `dnf5`; also `groupinstall`, `localinstall`, `upgrade`, `update`,
`remove`, `reinstall`, `downgrade`, `distro-sync`, `autoremove`, `group install`) unless
`-y`/`--assumeyes`, `--assumeno` or `--setopt=assumeyes=...` is given, the command reads a pipe,
or an earlier RUN configured `assumeyes`. `microdnf` is not concerned: it never asks (its `-y`
does nothing), which is why, unlike hadolint's DL3038, this rule does not report it.

## Why
Without it dnf asks "Is this ok [y/N]" and, with no terminal to answer, exits with an error: the
build fails.

## Example
```dockerfile
RUN dnf install python3
```
becomes
```dockerfile
RUN dnf install -y python3
```

## Fix safety
Safe: `-y` only answers the prompt; where dnf did not ask, nothing changes.

Same as hadolint's DL3038.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.transforms._packages import RpmYesRule

ACTIONS = ("install", "groupinstall", "localinstall", "update", "upgrade", "remove", "erase", "reinstall",
           "downgrade", "distro-sync", "autoremove", "group install", "module install", "in", "up", "rm")  # fmt: skip


class DnfYes(RpmYesRule):
    code = "DO230"
    name = "dnf-yes"
    summary = "`dnf install` without `-y` stops at a confirmation prompt and fails the build"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3038"

    programs = ("dnf", "dnf5", "tdnf")
    actions = ACTIONS
