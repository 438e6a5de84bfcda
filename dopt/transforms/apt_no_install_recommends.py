"""DO211 apt-no-install-recommends: install only the packages asked for.

## What it does
Adds `--no-install-recommends` to `apt-get install` (and `apt install`) unless the command or an
apt configuration written earlier in the image already decides about recommended packages
(`--no-install-recommends`, `--install-recommends`, `-o APT::Install-Recommends=...`).

## Why
By default apt also installs every package the requested ones *recommend*: documentation,
optional helpers, often tens or hundreds of megabytes a container never uses. Installing
`build-essential` or `python3-pip` without it can double the size of the layer.

## Example
```dockerfile
RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
```

## Fix safety
Unsafe: a program may need a package that is only recommended. `curl` recommends
`ca-certificates`; without it, every `https://` download fails with a certificate error. Apply it
with `--unsafe-fixes`, then add what the image really needs to the install line explicitly.

Same as hadolint's DL3015.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import APT, OptionRule, RunScript, configured_before, option_values


class AptNoInstallRecommends(OptionRule):
    code = "DO211"
    name = "apt-no-install-recommends"
    summary = "`apt-get install` without `--no-install-recommends` also installs recommended packages"
    fix_safety = FixSafety.UNSAFE
    hadolint = "DL3015"

    programs = APT
    actions = ("install",)
    option = "--no-install-recommends"

    def skip_run(self, ctx: Context, script: RunScript) -> bool:
        return configured_before(ctx, script.ins, "Install-Recommends", "apt.conf")

    def satisfied(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        if inv.has_option("--no-install-recommends", "--install-recommends"):
            return True
        if any("install-recommends" in value.lower() for value in option_values(inv, "-o", "--option")):
            return True
        return "Install-Recommends" in script.text[: inv.command.start]

    def message(self, inv: Invocation, action: str) -> str:
        return (
            f"`{action}` also installs every recommended package, often tens of MB the image does not need; "
            "add `--no-install-recommends` and name what is really needed"
        )
