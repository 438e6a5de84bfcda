"""DO200 merge-runs: consecutive RUN instructions that can be one RUN.

## What it does
Joins RUN instructions that follow each other in a stage into one RUN, one command per
continuation line:

* only comment lines and blank lines may stand between them (never ENV, ARG, WORKDIR, USER,
  SHELL, ONBUILD or any other instruction), and comment lines are kept inside the joined RUN;
* their flags (``--mount``, ``--network``, ``--security``) must be identical, and no mount may
  behave differently for one longer RUN (a ``tmpfs`` mount, a writable ``bind`` mount);
* both must be shell form in a POSIX shell: exec-form (JSON) and heredoc RUNs are left alone.

The scripts are joined with ``&&``, so the second runs only if the first succeeded, as a second
RUN would. Where that alone would change what runs, the script goes in a subshell:

* a first RUN that changes the shell (``cd``, variables, ``export``, functions, ``set +e``,
  ``set -o ...``, ``trap``) or can leave early (``exit``, ``exec``, ``|| exit 0``) becomes
  ``( ... ) && next``, so the next commands start from a fresh state, as in their own RUN;
* a second RUN with a top-level ``||``, ``;`` or ``&`` becomes ``first && ( ... )``, so that its
  parts stay bound to each other and not to the first RUN's status.

A first RUN that starts with ``set -e`` (``set -eux;``, ``set -euo pipefail;``) is joined with
``;``, and only to a RUN that starts with the same ``set`` command (which is then dropped) or to
a plain ``&&`` chain of simple commands whose outcome those options do not change: POSIX shells
ignore ``-e`` inside ``( ... ) && next``, and without the subshell the options reach the next
RUN's commands. Under a ``SHELL`` started with ``-e`` no subshell is used at all, for the same
reason.

A RUN that starts a background job (``&``), ends with a shell comment (which would swallow the
``&&``) or with a backslash, or does not parse, is not joined: the finding says why, without a
fix. A suppression comment between two RUNs (``# hadolint ignore=DL3059`` above the second)
keeps them apart.

RUNs that only clean up after the RUN before them, or a RUN that only runs ``apt-get update``
before an install, are DO201's and DO202's business; this rule reports the other merges. It can
be turned off with ``merge-runs = false`` under ``[tool.dopt.rules]``: then DO201 and DO202 still
fold clean-up and update steps into their install. Same intent as hadolint's DL3059.

## Why
Every RUN adds a layer. Files a later RUN deletes still take space in the earlier layer, and
each layer costs a little to store, push and pull. Fewer, larger RUNs also make the order of
cache-invalidating steps easier to see. The trade-off: a change to any command of a merged RUN
re-runs all of them, so keep steps that change often (copying source code) in RUNs of their own;
that is what ``merge-runs = false`` is for.

## Example
```dockerfile
RUN apt-get update && apt-get install -y build-essential
# build the tool
RUN cd /src && make
RUN make install
```
becomes
```dockerfile
RUN apt-get update && apt-get install -y build-essential \\
# build the tool
    && ( cd /src && make ) \\
    && make install
```

## Fix safety
Safe: the joined script runs the same commands in the same order with the same outcome, and the
final image has the same files; only the number of layers and the cache key of the RUN change.
Every join is checked with the shell layer (a real grammar, tree-sitter-bash); what cannot be
proven equivalent is not joined. A base image that sets its own ``SHELL`` with ``-e`` is not
visible to dopt (a stage's own ``SHELL`` is taken into account).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dopt.optimizer.rules import Context, Finding, FixSafety, FixScope, Rule
from dopt.optimizer.syntax import Document, Instruction
from dopt.transforms._runs import Merge, parse_shell, plan_merge, relation, run_chains

OPTION = "merge-runs"


def _lines(runs: Sequence[Instruction]) -> str:
    lines = [str(ins.line) for ins in runs]
    return lines[0] if len(lines) == 1 else f"{', '.join(lines[:-1])} and {lines[-1]}"


def _subshell_notes(merge: Merge) -> list[str]:
    """Why some of the merged RUNs run in a subshell ``( ... )``."""
    notes = []
    state = [(ins, detail) for ins, kind, detail in merge.subshells if kind == "state"]
    lists = [(ins, detail) for ins, kind, detail in merge.subshells if kind == "list"]
    if len(state) == 1:
        notes.append(
            f"the RUN at line {state[0][0].line} runs in a subshell so that `{state[0][1]}` does not affect "
            "the commands after it"
        )
    elif state:
        notes.append(
            f"the RUNs at lines {_lines([i for i, _ in state])} run in subshells so that their `cd`, variables, "
            "shell options and exits do not affect the commands after them"
        )
    if len(lists) == 1:
        operator = "newline" if lists[0][1] == "\n" else f"`{lists[0][1]}`"
        notes.append(
            f"the RUN at line {lists[0][0].line} runs in a subshell so that its top-level {operator} binds "
            "its own commands only"
        )
    elif lists:
        notes.append(
            f"the RUNs at lines {_lines([i for i, _ in lists])} run in subshells so that their top-level `;`, "
            "`||` and `&` bind their own commands only"
        )
    return notes


class MergeRuns(Rule):
    code = "DO200"
    name = "merge-runs"
    summary = "Consecutive RUN instructions can be one RUN"
    fix_safety = FixSafety.SAFE
    fix_scope = FixScope.DOCUMENT  # joins the chain: the RUNs before the reported one change too
    hadolint = "DL3059"

    def check(self, ctx: Context) -> Iterator[Finding]:
        if not ctx.options.get(OPTION, True):
            return
        doc = ctx.document
        for chain in run_chains(ctx):
            merges, refusals = plan_merge(doc, chain)
            for merge in merges:
                pairs = zip(merge.runs, merge.runs[1:], strict=False)
                if all(relation(a, b) is not None for a, b in pairs):
                    continue  # only clean-up or update steps: DO201 and DO202 report those
                message = f"RUN instructions at lines {_lines(merge.runs)} each make a layer; they can be one RUN"
                notes = _subshell_notes(merge)
                if notes:
                    message += " (" + "; ".join(notes) + ")"
                fix = self.make_fix(f"merge {len(merge.runs)} RUN instructions into one", merge.edit)
                # Reported from the second RUN on, as hadolint does, so that a suppression above the
                # first RUN (about merging it with what comes before) does not stop this merge.
                yield self.finding(ctx, merge.runs[1].keyword_start, merge.end, message, fix)
            for refusal in refusals:
                if relation(refusal.first, refusal.second) is not None:
                    continue
                message = (
                    f"RUN at line {refusal.second.line} makes a layer of its own, but it is not merged with the "
                    f"RUN at line {refusal.first.line}: {refusal.reason}"
                )
                yield self.at_instruction(ctx, refusal.second, message)

    def verify(self, before: Document, after: Document) -> str | None:
        """Every RUN the merge wrote (one whose script is new) parses as shell."""
        old = {i.args for i in before.instructions if i.name == "RUN"}
        for ins in after.instructions:
            if ins.name == "RUN" and not ins.json and ins.args not in old and parse_shell(ins.args).has_errors:
                return f"the merged RUN at line {ins.line} does not parse as shell"
        return None
