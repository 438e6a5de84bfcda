"""DO234 gem-no-document: install Ruby gems without generating their documentation.

## What it does
Adds `--no-document` to `gem install` (also `gem i` and `gem update`) unless documentation is
already decided on the command (`--no-document`, `-N`, `--document`, the old `--no-ri`/`--no-rdoc`)
or in a gemrc (`gem: --no-document` written by an earlier RUN, or a `ruby` base image, whose
`/usr/local/etc/gemrc` already turns it off).

## Why
By default RubyGems generates ri and RDoc documentation for every gem it installs: slow, and
several MB per gem in `$GEM_HOME/doc`, which nobody reads in a container. Only stages that end up
in the final image are checked. (hadolint has no rule for this; its DL3028 is about pinning gem
versions, see DO235.)

## Example
```dockerfile
RUN gem install bundler
```
becomes
```dockerfile
RUN gem install --no-document bundler
```

## Fix safety
Safe: the gems are installed the same way, only their documentation is not generated.
"""

from __future__ import annotations

from dopt.optimizer.rules import Context, FixSafety
from dopt.optimizer.shell import Invocation
from dopt.transforms._packages import OptionRule, RunScript, configured_before, image_name, stage_image


class GemNoDocument(OptionRule):
    code = "DO234"
    name = "gem-no-document"
    summary = "`gem install` generates documentation nobody reads in a container"
    fix_safety = FixSafety.SAFE

    programs = ("gem",)
    actions = ("install", "i", "update")
    option = "--no-document"
    final_image_only = True

    def skip_run(self, ctx: Context, script: RunScript) -> bool:
        if image_name(stage_image(ctx, script.ins)) in ("ruby", "jruby"):
            return True  # the official images' gemrc already says `--no-document`
        return (
            configured_before(ctx, script.ins, "no-doc", "gemrc")
            or configured_before(ctx, script.ins, "no-rdoc", "gemrc")
            or "gemrc" in script.text
        )

    def satisfied(self, ctx: Context, script: RunScript, inv: Invocation) -> bool:
        return inv.has_option("--no-document", "-N", "--document", "--no-ri", "--no-rdoc", "--ri", "--rdoc")

    def message(self, inv: Invocation, action: str) -> str:
        return f"`{action}` also generates ri and RDoc documentation (several MB per gem) into the image"
