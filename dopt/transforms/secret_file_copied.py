"""DO502 secret-file-copied: COPY or ADD puts a credentials file into a layer.

## What it does
Reports ``COPY``/``ADD`` of files that hold credentials: ``.env`` files, private keys (``id_rsa``,
``*.pem``, ``*.key``), ``.npmrc``, ``.pypirc``, ``.netrc``, ``.git-credentials``, and folders such
as ``.ssh/``, ``.aws/`` and ``.docker/``. For a copy of a whole folder (``COPY . /app``) it looks
into the build context and names the secret files that the ``.dockerignore`` lets through.

## Why
A file copied into a layer stays in the image even when a later ``RUN rm`` deletes it: every
layer can be extracted with ``docker save``. Build-time credentials belong in a secret mount
(``RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci``); run-time ones are given to the
container when it starts.

## Example
```dockerfile
COPY .npmrc /root/.npmrc
RUN npm ci && rm /root/.npmrc
```
Use ``RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci`` and build with
``docker build --secret id=npmrc,src=.npmrc .``.

## Fix
None: where the secret is needed decides the remedy. For a broad copy, adding the files to
``.dockerignore`` is usually enough.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.optimizer.syntax import Instruction
from dopt.transforms._context import open_context
from dopt.transforms._secrets import secret_path

_MAX_LISTED = 3


def _sources(ins: Instruction) -> list[str]:
    if ins.heredocs or any(f.name == "from" for f in ins.flags):
        return []  # heredoc bodies are written inline; --from copies come from another image or stage
    return list(ins.values[:-1])


class SecretFileCopied(Rule):
    code = "DO502"
    name = "secret-file-copied"
    summary = "COPY/ADD puts a credentials file (.env, private key, .npmrc ...) into a layer"

    def check(self, ctx: Context) -> Iterator[Finding]:
        context = None
        opened = False
        for ins in ctx.document.instructions:
            if ins.name not in ("COPY", "ADD") or ins.sub is not None:
                continue
            for source in _sources(ins):
                reason = secret_path(source)
                if reason is not None:
                    yield self.at_instruction(
                        ctx,
                        ins,
                        f"{ins.name} copies {source}, {reason}: it stays in the image even if a later "
                        "step deletes it; use a secret mount (RUN --mount=type=secret,...) instead",
                    )
                    continue
                if not opened:
                    context, _ = open_context(ctx)
                    opened = True
                if context is None or "$" in source or any(ch in source for ch in "*?["):
                    continue
                rel = source.strip("/") or "."
                if not context.is_dir(rel):
                    continue
                found = [
                    path
                    for path, is_dir in context.walk(limit=5000, skip=lambda p: p.endswith(("node_modules", ".git")))
                    if (rel == "." or path.startswith(rel + "/")) and secret_path(path) and not is_dir
                ]
                if found:
                    shown = ", ".join(found[:_MAX_LISTED]) + (
                        f" and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
                    )
                    yield self.at_instruction(
                        ctx,
                        ins,
                        f"{ins.name} {source} copies credentials files from the build context ({shown}); "
                        "add them to .dockerignore, or use a secret mount if the build needs them",
                    )
