"""DO235 gem-pin: name a version for each gem `gem install` installs.

## What it does
Reports `gem install` commands naming gems without a version (`rails` rather than `rails:7.1.3`
or `-v 7.1.3`). Report only, and **off by default**: enable it with `extend-select = ["DO235"]`.

## Why
Without a version each rebuild installs the latest release. Better still, list the gems in a
`Gemfile` and let `Gemfile.lock` pin them (`bundle install`). Pinning is a policy choice dopt
cannot make for you, hence opt-in and without a fix (hadolint's DL3028 is on by default).

## Example
```dockerfile
RUN gem install --no-document bundler
```
pinned:
```dockerfile
RUN gem install --no-document bundler:2.5.6
```

Same as hadolint's DL3028.
"""

from __future__ import annotations

from collections.abc import Sequence

from dopt.optimizer.shell import Invocation, Word
from dopt.transforms._packages import PinRule


class GemPin(PinRule):
    code = "DO235"
    name = "gem-pin"
    summary = "`gem install` without gem versions (opt-in)"
    hadolint = "DL3028"
    default_enabled = False

    programs = ("gem",)
    actions = ("install", "i")
    example = "`gem:version` or `-v version`"

    def unpinned(self, inv: Invocation, operands: Sequence[Word]) -> list[str]:
        if inv.has_option("-v", "--version"):
            return []
        return [w.value for w in operands if w.value and ":" not in w.value and not w.value.endswith(".gem")]
