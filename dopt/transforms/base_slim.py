"""DO440 slim-base-variant: use the -slim variant of a base image when the stage compiles nothing.

## What it does
Opt-in. For ``python``, ``node``, ``debian``, ``ruby``, ``rust`` and ``perl`` images on their full
variant (``python:3.12``, ``node:20-bookworm``, ``debian:bookworm``), reports the stage when its RUN
instructions

* install no build tools (``build-essential``, ``gcc``, ``make``, ``*-dev`` packages ...),
* and run none of the programs that only the full image ships (compilers, ``make``, ``git``,
  ``curl``, ``wget``, ``ssh`` ...), unless the stage installs them itself,

and rewrites the tag to the -slim variant, keeping version and Debian release:
``python:3.12`` → ``python:3.12-slim``, ``python:3.12-bookworm`` → ``python:3.12-slim-bookworm``,
``node:20-bookworm`` → ``node:20-bookworm-slim``, ``debian:bookworm`` → ``debian:bookworm-slim``.
A reference pinned by digest is reported without a fix (the -slim image has its own digest:
pin it again). Scripts that cannot be read are skipped.

## Why
The full images are built on ``buildpack-deps``: compilers, headers and version-control tools,
several hundred MB that a stage which only copies code and installs ready-made packages never
uses, but every pull, push and scan of the image pays for.

## Example
```dockerfile
FROM python:3.12
COPY . /app
RUN pip install --no-cache-dir -r /app/requirements.txt
CMD ["python", "/app/main.py"]
```
becomes
```dockerfile
FROM python:3.12-slim
...
```

## Fix safety
Unsafe: the -slim image lacks programs and libraries the full one has. The rule sees the
programs RUN calls by name, not what a script or package installer needs underneath: ``pip``
building a package that has no wheel for the platform needs a compiler, an ``npm`` package with a
native addon needs ``make`` and ``g++``, and the application itself may call a program at run time.
Build and test the result.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, FixSafety, Rule
from dopt.registry.reference import split_tag
from dopt.transforms._images import base_images, data, glob_matches, short_name, stage_activity

_PACKAGE_INSTALLERS = {
    "pip",
    "pip3",
    "pipenv",
    "poetry",
    "uv",
    "npm",
    "yarn",
    "pnpm",
    "gem",
    "bundle",
    "cpanm",
    "cargo",
}


def slim_tag(tag: str, style: str, latest: str | None) -> str | None:
    """The -slim counterpart of ``tag`` in an image whose slim tags follow ``style`` (None: none)."""
    if tag == "latest":
        return latest
    codenames = set(data()["slim"]["codenames"])
    parsed = split_tag(tag)
    variant = parsed.variant
    if parsed.version:
        version = tag[: len(tag) - len(variant) - 1] if variant else tag
        if not variant:
            return f"{version}-slim"
        if variant in codenames:
            return f"{version}-slim-{variant}" if style == "slim-before-codename" else f"{version}-{variant}-slim"
        return None
    if variant in codenames:
        return f"slim-{variant}" if style == "slim-before-codename" else f"{variant}-slim"
    return None


class SlimBaseVariant(Rule):
    code = "DO440"
    name = "slim-base-variant"
    summary = "Full base image in a stage that builds nothing; the -slim variant is several hundred MB smaller"
    fix_safety = FixSafety.UNSAFE
    default_enabled = False

    def check(self, ctx: Context) -> Iterator[Finding]:
        info = data()["slim"]
        absent = set(info["absent-programs"])
        for base in base_images(ctx):
            ref = base.ref
            if ref is None:
                continue
            entry = info["images"].get(short_name(ref))
            if entry is None:
                continue
            new_tag = slim_tag(ref.tag or "latest", str(entry["style"]), entry.get("latest"))
            if new_tag is None:
                continue
            activity = stage_activity(base.stage)
            if not activity.readable:
                continue
            if any(glob_matches(package, info["build-packages"]) for package in activity.installed):
                continue
            if (activity.programs & absent) - activity.installed:
                continue
            new_ref = ref.with_tag(new_tag).with_digest(None)
            message = (
                f"{base.where} is the full image, but this stage installs no build tools and runs none of the "
                f"programs only the full image has: {new_ref} is several hundred MB smaller"
            )
            installers = sorted(activity.programs & _PACKAGE_INSTALLERS)
            if installers:
                message += (
                    f" (check that what {', '.join(installers)} installs needs no compiler: "
                    "packages without a prebuilt wheel or with native addons build from source)"
                )
            start, end = base.span
            if ref.digest is not None:
                yield self.finding(
                    ctx, start, end, f"{message}; it is pinned by digest, so pin {new_ref} again after switching"
                )
                continue
            edit = base.edit(str(new_ref))
            if edit is None or base.arg is not None:
                yield self.finding(ctx, start, end, f"{message}; the reference is built from ARGs: change it by hand")
                continue
            yield self.finding(ctx, start, end, message, self.make_fix(f"use {new_ref}", edit))
