"""DO228 yum-yes: answer yum's confirmation prompt with `-y`.

## What it does
Adds `-y` to `yum install` (also `groupinstall`, `localinstall`, `update`, `upgrade`, `remove`,
`erase`, `reinstall`, `downgrade`, `distro-sync`, `autoremove`) unless `-y`/`--assumeyes`,
`--assumeno` or `--setopt=assumeyes=...` is given, the command reads a pipe (`yes | yum ...`) or
an earlier RUN configured `assumeyes`.

## Why
Without it yum asks "Is this ok [y/N]" and, with no terminal to answer, exits with an error: the
build fails.

## Example
```dockerfile
RUN yum install httpd
```
becomes
```dockerfile
RUN yum install -y httpd
```

## Fix safety
Safe: `-y` only answers the prompt; where yum did not ask, nothing changes.

Same as hadolint's DL3030.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.transforms._packages import RpmYesRule

ACTIONS = ("install", "groupinstall", "localinstall", "update", "upgrade", "remove", "erase", "reinstall",
           "downgrade", "distro-sync", "autoremove", "group install")  # fmt: skip


class YumYes(RpmYesRule):
    code = "DO228"
    name = "yum-yes"
    summary = "`yum install` without `-y` stops at a confirmation prompt and fails the build"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3030"

    programs = ("yum",)
    actions = ACTIONS
