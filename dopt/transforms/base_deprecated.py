"""DO430 deprecated-base-image: a FROM image past its end of life, with the supported successor.

## What it does
Reports a ``FROM`` image whose release or distribution gets no more security fixes, from the
data file ``dopt/data/base_images.toml``:

* language and distribution releases past end of life: ``python:2.7``, ``python:3.6`` to ``3.9``,
  ``node:14``/``16``/``18``/``20``, old ``golang``, ``ruby``, ``php``, ``alpine`` and ``ubuntu`` releases,
  ``debian:9``/``10``/``11``;
* Debian and Ubuntu code names wherever a tag carries them: ``debian:buster``,
  ``python:3.11-slim-buster``, ``node:18-bullseye``, ``ubuntu:bionic``, and ``-alpine3.15``-style
  suffixes;
* images deprecated as a whole: ``centos``, ``openjdk``, ``java``.

The message gives the end-of-life date and a supported successor with the tag's variant kept
(``python:3.7-slim-buster`` → ``python:3.13-slim-bookworm``). Entries count from their date on.

## Why
An end-of-life base gets no security fixes: every new CVE in its interpreter or C library stays
in the image. Moving to a supported release is a change to plan and test, which is why it is
reported and not fixed.

## Example
```dockerfile
FROM python:3.7-slim-buster
```
is reported: python 3.7 reached end of life on 2023-06-27 and Debian 10 (buster) on
2024-06-30; a supported successor is ``python:3.13-slim-bookworm``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.registry.reference import Reference, split_tag
from dopt.transforms._images import base_images, data, parse_version, short_name, today, version_text

_ALPINE_SUFFIX = re.compile(r"alpine(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class Notice:
    subject: str  # "python 3.7", "Debian 10 (buster)", "the centos image"
    eol: datetime.date | None  # None: long unsupported, date not recorded


def _date(value: object) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        return None


def _version_notice(
    name: str, entry: dict[str, Any], version: tuple[int, ...], day: datetime.date
) -> tuple[Notice | None, bool]:
    """The end-of-life notice for ``version`` of ``name``, and whether a successor applies."""
    best: tuple[int, ...] | None = None
    best_key = ""
    best_date: datetime.date | None = None
    for key, value in entry.get("eol", {}).items():
        parsed = parse_version(str(key))
        if version[: len(parsed)] == parsed and (best is None or len(parsed) > len(best)):
            best, best_key, best_date = parsed, str(key), _date(value)
    if best is not None:
        if best_date is not None and best_date <= day:
            return Notice(f"{name} {best_key}", best_date), True
        return None, False
    before = entry.get("eol-before")
    if before and version and version < parse_version(str(before)):
        return Notice(f"{name} {'.'.join(map(str, version))}", None), True
    return None, False


def notices_for(ref: Reference, day: datetime.date) -> tuple[list[Notice], str | None, str | None]:
    """End-of-life notices for ``ref``, a suggested successor reference and advice, when known."""
    info = data()
    name = short_name(ref)
    entry = info["images"].get(name)
    notices: list[Notice] = []
    advice: str | None = None
    tag = ref.tag or "latest"
    parsed = split_tag(tag)
    new_version: str | None = None
    if entry is not None:
        image_eol = _date(entry["eol"]) if isinstance(entry.get("eol"), str) else None
        if image_eol is not None and image_eol <= day:
            notices.append(Notice(f"the {name} image", image_eol))
            advice = entry.get("advice")
        elif parsed.version:
            notice, successor = _version_notice(name, entry, parsed.version, day)
            if notice is not None:
                notices.append(notice)
                if successor and entry.get("successor"):
                    new_version = str(entry["successor"])
                elif entry.get("advice"):
                    advice = str(entry["advice"])
    parts = (parsed.variant or "").split("-") if parsed.variant else []
    new_parts = list(parts)
    alpine = info["images"].get("alpine", {})
    for index, part in enumerate(parts):
        codename = info["codenames"].get(part)
        if codename is not None:
            eol = _date(codename["eol"])
            if eol is not None and eol <= day:
                notices.append(Notice(f"{codename['distro']} ({part})", eol))
                new_parts[index] = str(codename["successor"])
            continue
        suffix = _ALPINE_SUFFIX.fullmatch(part)
        if suffix is not None and alpine:
            notice, _ = _version_notice("alpine", alpine, parse_version(suffix.group(1)), day)
            if notice is not None:
                notices.append(notice)
                new_parts[index] = f"alpine{alpine.get('successor', '')}"
    if not notices:
        return [], None, None
    if advice is not None or (new_version is None and new_parts == parts):
        return notices, None, advice
    version = new_version if new_version is not None else (version_text(parsed) if parsed.version else "")
    variant = "-".join(new_parts)
    new_tag = "-".join(piece for piece in (version, variant) if piece)
    if not new_tag:
        return notices, None, None
    return notices, str(ref.with_digest(None).with_tag(new_tag)), None


class DeprecatedBaseImage(Rule):
    code = "DO430"
    name = "deprecated-base-image"
    summary = "FROM image past its end of life (old Python/Node/Debian/Ubuntu...); move to the supported successor"

    def check(self, ctx: Context) -> Iterator[Finding]:
        day = today(ctx)
        for base in base_images(ctx):
            if base.ref is None:
                continue
            notices, successor, advice = notices_for(base.ref, day)
            if not notices:
                continue
            parts = []
            for notice in notices:
                if notice.eol is None:
                    parts.append(f"{notice.subject} (long unsupported)")
                elif notice.subject.startswith("the "):
                    parts.append(f"{notice.subject} is deprecated (since {notice.eol.isoformat()})")
                else:
                    parts.append(f"{notice.subject} since {notice.eol.isoformat()}")
            message = f"{base.where} is past end of life: {', '.join(parts)}; it gets no security fixes"
            if successor:
                message += f". A supported successor: {successor} (test the application on it)"
            elif advice:
                message += f". Use {advice}"
            yield self.finding(ctx, *base.span, message)
