"""DO500 secret-in-arg-or-env: a secret passed through ARG or ENV ends up in the image.

## What it does
Reports ``ENV`` and ``ARG`` whose name says it holds a secret (``NPM_TOKEN``, ``DB_PASSWORD``,
``AWS_SECRET_ACCESS_KEY``, ``API_KEY`` ...) when:

* an ``ENV`` sets it: the value is stored in the image configuration;
* an ``ARG`` gives it a literal default: the secret is written in the Dockerfile;
* a ``RUN`` uses the ``ARG``: build-argument values used by ``RUN`` are recorded in the image
  history (``docker history --no-trunc`` shows them).

## Why
Anyone who can pull the image can read its configuration and history. BuildKit secret mounts
give a ``RUN`` the secret for the duration of that one command and leave nothing behind.

## Example
```dockerfile
FROM node:18
ARG NPM_TOKEN
RUN npm config set //registry.npmjs.org/:_authToken=$NPM_TOKEN && npm ci
```
becomes
```dockerfile
FROM node:18
RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN npm config set //registry.npmjs.org/:_authToken=$NPM_TOKEN && npm ci
```
built with ``docker build --secret id=npm_token,env=NPM_TOKEN .``.

## Fix safety
Unsafe: the build command must change (it must pass ``--secret``, which the finding spells out),
and secret mounts with ``env=`` need a Dockerfile frontend of 1.10 or later (Docker 27+). The
fix is offered for an ``ARG`` that declares only the secret and is used by ``RUN`` only; for a
secret ``ENV`` it removes the instruction, and the container must then get the value at run time
(``docker run -e NAME`` or an orchestrator's secret). Messages never print a secret in full.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Edit, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.semantic import arg_pairs, env_pairs, expand
from dopt.optimizer.shell import parse_shell
from dopt.optimizer.syntax import Instruction
from dopt.transforms._secrets import looks_secret, mask


def _reads(script: str, name: str) -> bool:
    return any(e.name == name for e in parse_shell(script).expansions)


def _mentions(ins: Instruction, name: str) -> bool:
    """Whether a non-RUN instruction may expand ``name`` (BuildKit substitutes ``$NAME`` there)."""
    text = ins.logical + "".join(h.content for h in ins.heredocs)
    return f"${name}" in text or "${" + name in text


class SecretInArgOrEnv(Rule):
    code = "DO500"
    name = "secret-in-arg-or-env"
    summary = "Secret passed through ARG or ENV is stored in the image; use a secret mount"
    fix_safety = FixSafety.UNSAFE
    fix_scope = FixScope.DOCUMENT  # the ARG/ENV goes and the RUNs that used it get a secret mount

    def check(self, ctx: Context) -> Iterator[Finding]:
        model = ctx.model
        for ins in ctx.document.instructions:
            if ins.sub is not None:
                continue
            if ins.name == "ENV":
                yield from self._env(ctx, ins)
            elif ins.name == "ARG":
                stage = model.stage_of(ins)
                stage_instructions = stage.instructions if stage else ()
                for key, default in arg_pairs(ins):
                    if looks_secret(key):
                        yield from self._arg(ctx, ins, key, default, stage_instructions)

    def _env(self, ctx: Context, ins: Instruction) -> Iterator[Finding]:
        pairs = env_pairs(ins)
        variables = ctx.model.scope_of(ins).variables()
        for key, raw in pairs:
            if not looks_secret(key) or not raw:
                continue
            value = expand(raw, variables, ctx.document.escape)
            shown = f"value {mask(value)}" if value else f"value {raw.split('$', 1)[0]}$… from a build argument"
            message = (
                f"ENV {key} stores a secret in the image configuration ({shown}); anyone who pulls the image "
                f"can read it. Pass it when the container starts (docker run -e {key}, or an orchestrator secret)"
            )
            fix = None
            if len(pairs) == 1:
                fix = self.make_fix(f"remove ENV {key}; provide it at run time", Edit(ins.start, ins.end, ""))
            yield self.at_instruction(ctx, ins, message, fix)

    def _arg(
        self,
        ctx: Context,
        ins: Instruction,
        key: str,
        default: str | None,
        stage_instructions: tuple[Instruction, ...],
    ) -> Iterator[Finding]:
        after = [i for i in stage_instructions if i.start > ins.start]
        runs = [i for i in after if i.name == "RUN" and not i.json and not i.heredocs and _reads(i.args, key)]
        other_uses = [i for i in after if i.name != "RUN" and _mentions(i, key)]
        if default:
            problem = f"ARG {key} has a literal default ({mask(default)}), so the secret is in the Dockerfile"
        elif runs:
            problem = (
                f"ARG {key} is used by RUN on line {runs[0].line}; build-argument values used by RUN are "
                "recorded in the image history"
            )
        else:
            return
        secret_id = key.lower()
        flag = f"--mount=type=secret,id={secret_id},env={key}"
        message = (
            f"{problem}. Use a secret mount ({flag}) and build with `docker build --secret id={secret_id},env={key}`"
        )
        fix = None
        single = len(arg_pairs(ins)) == 1
        if (
            runs
            and single
            and not other_uses
            and not any(f.value and f"id={secret_id}" in f.value for r in runs for f in r.flags)
        ):
            edits = [Edit(ins.start, ins.end, "")]
            for run in runs:
                at = run.flags[0].start if run.flags else run.source_offset(run.args_start)
                edits.append(Edit(at, at, flag + " "))
            fix = self.make_fix(f"remove ARG {key}; give each RUN that reads it a secret mount", *edits)
        yield self.at_instruction(ctx, ins, message, fix)
