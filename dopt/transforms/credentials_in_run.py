"""DO501 literal-credentials: a password, token or private key written into the Dockerfile.

## What it does
Reports literal credentials of known shapes in ``RUN`` scripts, heredoc bodies and ``ENV`` /
``ARG`` / ``LABEL`` values: passwords in URLs (``https://user:pass@host``), ``Authorization:``
headers with a literal token, AWS access key ids, GitHub, GitLab, npm and Slack tokens, and
private key blocks. Values that come from a variable (``$TOKEN``) are not literal and are left to
DO500.

## Why
The Dockerfile is usually in version control, and the command line of every ``RUN`` is stored in
the image history: the credential leaks to everyone who can read either.

## Example
```dockerfile
RUN curl -H "Authorization: Bearer 0123456789abcdef" https://example.com/pkg.tgz | tar xz
```
Use a secret mount instead: ``RUN --mount=type=secret,id=api_token,env=API_TOKEN curl -H
"Authorization: Bearer $API_TOKEN" ...``.

## Fix
None: the credential must also be revoked, and only its owner can do that. The message shows
the kind of credential and where it is, never the credential itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding, Rule
from dopt.transforms._secrets import find_tokens, mask

_SCANNED = frozenset({"RUN", "ENV", "ARG", "LABEL", "COPY", "ADD"})


class LiteralCredentials(Rule):
    code = "DO501"
    name = "literal-credentials"
    summary = "Literal password, token or private key in the Dockerfile"

    def check(self, ctx: Context) -> Iterator[Finding]:
        source = ctx.document.source
        for ins in ctx.document.instructions:
            if (ins.sub or ins).name not in _SCANNED:
                continue
            for start, end in [(ins.start, ins.end)]:
                for match in find_tokens(source[start:end]):
                    where = start + match.start
                    message = (
                        f"{match.kind} is written here ({mask(match.secret)}); it is stored in the image "
                        "history and in version control. Revoke it and pass it with a secret mount"
                    )
                    yield self.finding(ctx, where, start + match.end, message)
