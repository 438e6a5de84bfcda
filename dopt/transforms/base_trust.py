"""DO420 untrusted-base-registry: a FROM image from a registry or namespace the project does not trust.

## What it does
Opt-in (select DO420, or its hadolint code DL3026). Reports every ``FROM`` image that does not come
from a trusted source. Docker Hub's official images (``docker.io/library``) are trusted; add more
in ``[tool.dopt.rules]``::

    trusted-registries = ["ghcr.io/myorg", "registry.example.com", "docker.io/bitnami"]

An entry is a registry host (``registry.example.com``, ``localhost:5000``: everything it serves),
a host and namespace (``ghcr.io/myorg``: that namespace and below), or a Docker Hub namespace
(``bitnami``, same as ``docker.io/bitnami``). ``docker.io`` trusts all of Docker Hub. A ``FROM`` whose
build argument has no default is reported too: its source cannot be checked. Stages built on
earlier stages and ``scratch`` are not images.

## Why
A base image runs as the foundation of everything in the container; anyone who can push to its
repository can change what ships. Keeping bases to registries the organisation controls or
vets (and mirrors) limits who that is, and is what many supply-chain policies require.

## Example
```toml
[tool.dopt.rules]
trusted-registries = ["ghcr.io/myorg"]
```
```dockerfile
FROM ghcr.io/myorg/base:1.4     # trusted
FROM python:3.12-slim           # trusted: an official image
FROM randomuser/python-plus:1   # reported
```
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.registry.pinning import TRUSTED_REGISTRIES
from dopt.registry.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, Reference
from dopt.transforms._images import base_images

_OFFICIAL = (DEFAULT_DOMAIN, "library")


def _entry(text: str) -> tuple[str, str] | None:
    value = text.strip().split("://", 1)[-1].strip("/")
    if not value:
        return None
    first, _, rest = value.partition("/")
    if first == "localhost" or "." in first or ":" in first:
        host = first.lower()
        if host in (LEGACY_DEFAULT_DOMAIN, "registry-1.docker.io"):
            host = DEFAULT_DOMAIN
        return host, rest
    return DEFAULT_DOMAIN, value


def trusted_sources(options: object) -> list[tuple[str, str]]:
    raw = options.get(TRUSTED_REGISTRIES, []) if hasattr(options, "get") else []
    entries = [raw] if isinstance(raw, str) else list(raw or [])
    sources = [_OFFICIAL]
    for item in entries:
        parsed = _entry(str(item))
        if parsed is not None:
            sources.append(parsed)
    return sources


def is_trusted(ref: Reference, sources: list[tuple[str, str]]) -> bool:
    for host, prefix in sources:
        if ref.domain.lower() != host:
            continue
        if not prefix or ref.path == prefix or ref.path.startswith(prefix + "/"):
            return True
    return False


def _source_of(ref: Reference) -> str:
    namespace = ref.path.rsplit("/", 1)[0] if "/" in ref.path else ""
    return f"{ref.domain}/{namespace}" if namespace else ref.domain


class UntrustedBaseRegistry(Rule):
    code = "DO420"
    name = "untrusted-base-registry"
    summary = "FROM image from a registry or namespace not in trusted-registries (official images are trusted)"
    hadolint = "DL3026"
    default_enabled = False

    def check(self, ctx: Context) -> Iterator[Finding]:
        sources = trusted_sources(ctx.options)
        listed = ", ".join(f"{host}/{prefix}" if prefix else host for host, prefix in sources)
        for base in base_images(ctx):
            if base.unknown:
                yield self.finding(
                    ctx,
                    *base.span,
                    f"{base.word} comes from a build argument with no default, so whether it comes from a "
                    f"trusted registry cannot be checked (trusted: {listed})",
                )
                continue
            ref = base.ref
            if ref is None or is_trusted(ref, sources):
                continue
            yield self.finding(
                ctx,
                *base.span,
                f"{base.where} comes from {_source_of(ref)}, which is not a trusted source (trusted: {listed}); "
                "use an image from a trusted registry, or add this one to trusted-registries in [tool.dopt.rules] "
                "if it is vetted",
            )
