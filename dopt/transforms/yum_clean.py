"""DO229 yum-clean: clean yum's caches in the RUN that fills them.

## What it does
After `yum install` (also `update`, `upgrade`, `groupinstall`, `localinstall`, `reinstall`,
`downgrade`, `distro-sync`, `makecache`), appends `yum clean all` at the end of the RUN, unless
the RUN already runs it (or deletes `/var/cache/yum`) after the last install, or keeps that
folder in a cache mount.

## Why
yum keeps repository metadata, and depending on the configuration the downloaded packages, in
`/var/cache/yum`: commonly 50 to 200 MB that the running container never needs. A later RUN
cannot remove it from this layer. Only stages that end up in the final image are checked.

## Example
```dockerfile
RUN yum install -y httpd
```
becomes
```dockerfile
RUN yum install -y httpd && yum clean all
```

## Fix safety
Safe: a later `yum install` downloads the metadata again by itself. `&&` keeps the RUN's exit
status.

Same as hadolint's DL3032.
"""

from __future__ import annotations

from dopt.optimizer.rules import FixSafety
from dopt.transforms._packages import RpmCleanRule


class YumClean(RpmCleanRule):
    code = "DO229"
    name = "yum-clean"
    summary = "yum's metadata and package cache left in the image"
    fix_safety = FixSafety.SAFE
    hadolint = "DL3032"

    programs = ("yum",)
    cache_paths = ("/var/cache/yum",)
