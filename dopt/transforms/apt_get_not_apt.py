"""DO213 apt-get-not-apt: use `apt-get` and `apt-cache` in scripts, not `apt`.

## What it does
Rewrites `apt install`, `apt update`, `apt remove`, `apt purge`, `apt autoremove`, `apt clean` ...
to the same `apt-get` command, `apt upgrade` to `apt-get upgrade --with-new-pkgs` and
`apt full-upgrade` to `apt-get dist-upgrade`, which do exactly what the `apt` commands do.
Query commands (`apt show`, `apt search`, `apt list`, `apt policy`) are reported only: their
`apt-cache` counterparts print differently.

## Why
`apt` is the interactive front end. Its command line and output are not stable ("WARNING: apt does
not have a stable CLI interface. Use with caution in scripts."), it draws progress bars into the
build log, and its defaults may change between releases. `apt-get` is the interface meant for
scripts, and the one the other apt rules (DO210-DO212) look at first.

## Example
```dockerfile
RUN apt update && apt install -y curl
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y curl
```

## Fix safety
Safe on images built from the Debian and Ubuntu based official images (`debian`, `ubuntu`,
`python`, `node`, `golang`, `ruby`, `buildpack-deps`, ...): the only other difference between the
two commands is that `apt` deletes the `.deb` files it downloaded while `apt-get` keeps them in
`/var/cache/apt/archives`, and those images delete them after every install anyway
(`/etc/apt/apt.conf.d/docker-clean`). On other base images the fix is marked unsafe, because the
downloaded packages could stay in the image; add `apt-get clean` to the RUN there.

Same as hadolint's DL3027.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety
from dopt.transforms._packages import DOCKER_CLEAN_IMAGES, PackageRule, image_name, run_scripts, stage_image

# `apt X` -> the apt-get words doing the same
SAME_AS = {
    "install": "install", "update": "update", "remove": "remove", "purge": "purge", "autoremove": "autoremove",
    "autopurge": "autopurge", "clean": "clean", "autoclean": "autoclean", "build-dep": "build-dep",
    "source": "source", "download": "download", "satisfy": "satisfy", "reinstall": "reinstall",
    "changelog": "changelog", "upgrade": "upgrade --with-new-pkgs", "full-upgrade": "dist-upgrade",
}  # fmt: skip
QUERIES = {"show": "apt-cache show", "search": "apt-cache search", "policy": "apt-cache policy",
           "depends": "apt-cache depends", "rdepends": "apt-cache rdepends", "showsrc": "apt-cache showsrc",
           "list": "dpkg-query -W"}  # fmt: skip


class AptGetNotApt(PackageRule):
    code = "DO213"
    name = "apt-get-not-apt"
    summary = "`apt` is for people; scripts should use `apt-get` or `apt-cache`"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3027"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            safe = image_name(stage_image(ctx, script.ins)) in DOCKER_CLEAN_IMAGES
            for inv in script.invocations("apt"):
                sub = inv.subcommand
                program = inv.program_word
                if sub in SAME_AS and inv.subcommand_word is not None:
                    new = SAME_AS[sub]
                    edits = [script.replace_word(program, program.text[: -len("apt")] + "apt-get")]
                    if new != sub:
                        edits.append(script.replace_word(inv.subcommand_word, new))
                    safety = FixSafety.SAFE if safe else FixSafety.UNSAFE
                    fix = self.fix_or_none(f"use `apt-get {new}`", edits, safety)
                    caveat = "" if safe else " (the base image may keep the `.deb` files apt-get downloads)"
                    message = f"`apt {sub}` in a script: use `apt-get {new}`, the stable interface for scripts{caveat}"
                    yield self.command_finding(ctx, script, inv.command, message, fix)
                elif sub in QUERIES:
                    message = f"`apt {sub}` in a script: its output is not stable; use `{QUERIES[sub]}`"
                    yield self.command_finding(ctx, script, inv.command, message, None)
