"""DO231 dnf-clean: clean dnf's caches in the RUN that fills them.

## What it does
After `dnf install` (also `dnf5`, `microdnf`, `tdnf`; `upgrade`, `update`, `groupinstall`,
`reinstall`, `downgrade`, `distro-sync`, `makecache`), appends `dnf clean all` (with the same
program: `microdnf clean all`, ...) at the end of the RUN, unless the RUN already cleans after the
last install (or deletes `/var/cache/dnf`, `/var/cache/libdnf5`, `/var/cache/yum`), or keeps the
cache in a cache mount.

## Why
dnf keeps repository metadata in `/var/cache/dnf` (`/var/cache/libdnf5` for dnf5,
`/var/cache/yum` for microdnf): often 50 to 300 MB that a container never needs. A later RUN cannot
remove it from this layer. Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN dnf install -y python3
```
becomes
```dockerfile
RUN dnf install -y python3 && dnf clean all
```

## Fix safety
Safe: a later install downloads the metadata again by itself. `&&` keeps the RUN's exit status.

Same as hadolint's DL3040.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.transforms._packages import RpmCleanRule


class DnfClean(RpmCleanRule):
    code = "DO231"
    name = "dnf-clean"
    summary = "dnf's metadata cache left in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3040"

    programs = ("dnf", "dnf5", "microdnf", "tdnf")
    cache_paths = ("/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum", "/var/cache/tdnf")
