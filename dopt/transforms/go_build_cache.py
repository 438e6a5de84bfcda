"""DO237 go-build-cache: Go's module and build caches shipped in the final image.

## What it does
Reports a RUN in a stage of the final image that runs `go build`, `go install`, `go mod download`,
`go get`, `go test`, `go run` or `go generate` without cleaning up afterwards (`go clean -cache
-modcache`) and without cache mounts over the module cache and the build cache. Report only.

## Why
Go keeps every downloaded module in the module cache (`$GOPATH/pkg/mod`, `/go/pkg/mod` in the
golang images) and every compiled package in the build cache (`~/.cache/go-build`); together
often several hundred MB, plus the whole Go toolchain in the base image. None of it is needed to
run a compiled binary.

The best fix is a multi-stage build: compile in a `golang` stage and copy only the binary into a
small final image (`FROM gcr.io/distroless/static` or `debian:bookworm-slim`). Within one stage,
end the RUN with `go clean -cache -modcache`, or (BuildKit) keep both caches in cache mounts,
which also makes rebuilds faster:

```dockerfile
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -o /usr/local/bin/server .
```

A cache mount must then be on *every* RUN that uses Go modules: a `go mod download` into a mount
leaves nothing for a later `go build` without it. dopt does not rewrite this on its own, because
where the modules live depends on `GOPATH`/`GOMODCACHE` set by the base image.

## Example
```dockerfile
FROM golang:1.19
WORKDIR /app
COPY . .
RUN go build -o server .
CMD ["./server"]
```
is reported at the `go build` line.
"""

from __future__ import annotations

from collections.abc import Iterator

from dopt.optimizer.rules import Context, Finding
from dopt.transforms._packages import PackageRule, command_text, has_cache_mount, in_final_image, run_scripts

BUILDERS = frozenset({"build", "install", "get", "test", "run", "generate", "vet", "mod"})


class GoBuildCache(PackageRule):
    code = "DO237"
    name = "go-build-cache"
    summary = "Go module and build caches left in the final image"

    def check(self, ctx: Context) -> Iterator[Finding]:
        for script in run_scripts(ctx):
            ins = script.ins
            if not in_final_image(ctx, ins):
                continue
            users = [
                inv
                for inv in script.invocations("go")
                if inv.subcommand in BUILDERS
                and (inv.subcommand != "mod" or any(w.value == "download" for w in inv.operands))
            ]
            if not users:
                continue
            last = users[-1]
            cleaned = any(
                inv.subcommand == "clean"
                and any(w.value in ("-modcache", "--modcache") for w in inv.command.words)
                and inv.command.start > last.command.start
                for inv in script.invocations("go")
            )
            if cleaned:
                continue
            caches = []
            if not has_cache_mount(ins, "pkg/mod", "GOMODCACHE"):
                caches.append("the module cache (/go/pkg/mod)")
            if not has_cache_mount(ins, "go-build", "GOCACHE") and any(inv.subcommand != "mod" for inv in users):
                caches.append("the build cache (~/.cache/go-build)")
            if not caches:
                continue
            first = users[0]
            shown = command_text(first, first.operands[0] if first.subcommand == "mod" else first.subcommand_word)
            message = (
                f"`{shown}` leaves {' and '.join(caches)} in the final image, often "
                "hundreds of MB; build in a separate stage and copy only the binary, or end the RUN with "
                "`go clean -cache -modcache`"
            )
            yield self.command_finding(ctx, script, first.command, message, None)
