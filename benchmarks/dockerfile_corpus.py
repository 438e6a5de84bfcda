"""A deterministic corpus of varied, realistic Dockerfiles for benchmarks and robustness checks.

Speed measured on a handful of hand-written files says little: real Dockerfiles mix package
managers, multi-stage builds, heredocs, long continuation chains with comments inside, legacy
forms (``ENV key value``, ``MAINTAINER``), lower-case keywords and Windows line endings, and each
of these takes a different path through the parser and the rules. This module builds such files
from templates with a seeded random generator, so a benchmark run is repeatable (same seed, same
bytes) and needs no network access. Every generated file is one BuildKit accepts.

Run ``python benchmarks/dockerfile_corpus.py FOLDER [--count N] [--seed S]`` to write a corpus.
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections.abc import Callable
from pathlib import Path

DEFAULT_SEED = 20240601

_DEBIAN_BASES = ("debian:12", "debian:bookworm-slim", "ubuntu:22.04", "ubuntu:24.04", "ubuntu", "debian:latest")
_APT_PACKAGES = (
    "curl", "ca-certificates", "git", "build-essential", "libpq-dev", "gnupg", "wget", "unzip",
    "jq", "openssh-client", "locales", "tzdata", "procps", "vim-tiny", "netcat-openbsd", "xz-utils",
)  # fmt: skip
_PIP_PACKAGES = ("flask", "gunicorn", "requests", "numpy", "pandas", "uvicorn[standard]", "django==4.2.11", "celery")
_NPM_GLOBALS = ("pm2", "typescript", "serve", "nodemon")
_APK_PACKAGES = ("curl", "bash", "git", "tini", "ca-certificates", "openssl", "su-exec", "tzdata")
_YUM_PACKAGES = ("httpd", "php", "mariadb-server", "openssh-server", "which", "tar", "gzip")


class _Writer:
    """Collects lines; keywords in upper case unless the file is one of the sloppy lower-case ones."""

    def __init__(self, rng: random.Random, *, lower: bool = False) -> None:
        self.rng = rng
        self.lower = lower
        self.lines: list[str] = []

    def kw(self, keyword: str) -> str:
        return keyword.lower() if self.lower and self.rng.random() < 0.5 else keyword

    def add(self, keyword: str, rest: str) -> None:
        self.lines.append(f"{self.kw(keyword)} {rest}")

    def raw(self, text: str) -> None:
        self.lines.append(text)

    def comment(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def blank(self) -> None:
        self.lines.append("")

    def run_chain(self, commands: list[str], *, comments: bool = False, indent: str = "    ") -> None:
        """A RUN with ``&&``-joined commands on continuation lines, sometimes with comments inside."""
        parts = [f"{self.kw('RUN')} {commands[0]}"]
        for command in commands[1:]:
            if comments and self.rng.random() < 0.2:
                parts.append(f"{indent}# {command.split()[0]} step")
            parts.append(f"{indent}&& {command}")
        self.lines.append(_join_continuations(parts))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _join_continuations(parts: list[str]) -> str:
    """Join lines with `` \\``; a comment line inside a continuation carries none (BuildKit drops it whole)."""
    out = parts[0]
    for prev, part in itertools.pairwise(parts):
        out += ("\n" if prev.lstrip().startswith("#") else " \\\n") + part
    return out


def _pick(rng: random.Random, items: tuple[str, ...], low: int, high: int) -> list[str]:
    return rng.sample(items, rng.randint(low, min(high, len(items))))


def _header(w: _Writer) -> None:
    rng = w.rng
    if rng.random() < 0.3:
        w.raw("# syntax=docker/dockerfile:1")
    if rng.random() < 0.5:
        w.comment(rng.choice(["Build image for the service", "Generated from template; edit with care", "Base image"]))
    if rng.random() < 0.15:
        w.add("MAINTAINER", rng.choice(["Jane Doe <jane@example.com>", "ops@example.org"]))


def _apt(w: _Writer) -> None:
    rng = w.rng
    base = rng.choice(_DEBIAN_BASES)
    w.add("FROM", base)
    if rng.random() < 0.3:
        w.add("ENV", rng.choice(["DEBIAN_FRONTEND noninteractive", "DEBIAN_FRONTEND=noninteractive"]))
    pkgs = _pick(rng, _APT_PACKAGES, 2, 9)
    style = rng.randrange(4)
    if style == 0:
        w.add("RUN", "apt-get update")
        w.add("RUN", "apt-get install -y " + " ".join(pkgs))
    elif style == 1:
        w.run_chain(
            ["apt-get update", "apt-get install -y --no-install-recommends " + " ".join(pkgs),
             "rm -rf /var/lib/apt/lists/*"],
            comments=True,
        )  # fmt: skip
    elif style == 2:
        body = ["set -eux;", "apt-get update;", "apt-get install -y --no-install-recommends"]
        body += [f"\t{p}" for p in sorted(pkgs)]
        body += [";", "rm -rf /var/lib/apt/lists/*"]
        w.raw(w.kw("RUN") + " " + " \\\n\t".join(body))
    else:
        w.raw(
            w.kw("RUN")
            + " --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n"
            + "    apt-get update && apt-get install -y "
            + " ".join(pkgs)
        )
    if rng.random() < 0.4:
        w.add("RUN", "curl -fsSL https://example.com/install.sh | sh")
    if rng.random() < 0.3:
        w.add("RUN", "cd /opt && wget -q https://example.com/tool.tar.gz && tar xzf tool.tar.gz")
    w.add("WORKDIR", rng.choice(["/app", "/srv", "/opt/app"]))
    w.add("COPY", rng.choice([". .", ". /app", "--chown=app:app . ."]))
    if rng.random() < 0.5:
        w.add("EXPOSE", rng.choice(["80", "8080", "443 80", "3000/tcp"]))
    w.add("CMD", rng.choice(['["./start.sh"]', "./start.sh", '["bash", "-c", "exec ./run"]']))


def _pip(w: _Writer) -> None:
    rng = w.rng
    version = rng.choice(["3.11", "3.12", "3.10-slim", "3.12-slim-bookworm", "3.9-alpine", "latest"])
    w.add("FROM", f"python:{version}")
    if rng.random() < 0.5:
        w.add("ENV", "PYTHONDONTWRITEBYTECODE=1 \\\n    PYTHONUNBUFFERED=1")
    w.add("WORKDIR", "/app")
    if rng.random() < 0.5:
        w.add("COPY", "requirements.txt .")
        if rng.random() < 0.5:
            w.add("RUN", "pip install --no-cache-dir -r requirements.txt")
        else:
            w.raw(f"{w.kw('RUN')} --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt")
        w.add("COPY", ". .")
    else:
        w.add("COPY", ". .")
        w.add("RUN", "pip install -r requirements.txt")
    if rng.random() < 0.5:
        w.add("RUN", "pip install " + " ".join(_pick(rng, _PIP_PACKAGES, 1, 4)))
    if rng.random() < 0.3:
        w.add("RUN", "useradd -m app")
        w.add("USER", "app")
    w.add("EXPOSE", "8000")
    if rng.random() < 0.3:
        w.add("HEALTHCHECK", "--interval=30s --timeout=3s CMD curl -f http://localhost:8000/health || exit 1")
    commands = ['["gunicorn", "-b", "0.0.0.0:8000", "app:app"]', "python app.py", '["python", "-m", "app"]']
    w.add("CMD", rng.choice(commands))


def _npm(w: _Writer) -> None:
    rng = w.rng
    node = rng.choice(["node:20", "node:20-alpine", "node:18-bullseye", "node:lts", "node"])
    multi = rng.random() < 0.6
    w.add("FROM", f"{node} AS build" if multi else node)
    w.add("WORKDIR", "/usr/src/app")
    if rng.random() < 0.6:
        w.add("COPY", "package*.json ./")
        w.add("RUN", rng.choice(["npm ci", "npm install", "npm ci --omit=dev", "yarn install --frozen-lockfile"]))
        w.add("COPY", ". .")
    else:
        w.add("COPY", ". .")
        w.add("RUN", "npm install")
    if rng.random() < 0.3:
        w.add("RUN", "npm install -g " + " ".join(_pick(rng, _NPM_GLOBALS, 1, 2)))
    w.add("RUN", "npm run build")
    if multi:
        w.blank()
        if rng.random() < 0.5:
            w.add("FROM", "nginx:alpine")
            w.add("COPY", "--from=build /usr/src/app/dist /usr/share/nginx/html")
            w.add("EXPOSE", "80")
            w.add("CMD", '["nginx", "-g", "daemon off;"]')
        else:
            w.add("FROM", rng.choice(["node:20-alpine", "gcr.io/distroless/nodejs20-debian12"]))
            w.add("COPY", "--from=build /usr/src/app /app")
            w.add("CMD", '["/app/server.js"]')
    else:
        w.add("EXPOSE", "3000")
        w.add("CMD", rng.choice(['["npm", "start"]', "npm start", '["node", "server.js"]']))


def _go(w: _Writer) -> None:
    rng = w.rng
    w.add("FROM", rng.choice(["golang:1.22", "golang:1.21-alpine", "golang:1.22-bookworm"]) + " AS builder")
    if rng.random() < 0.5:
        w.add("ARG", "VERSION=dev")
    w.add("WORKDIR", "/src")
    w.add("COPY", "go.mod go.sum ./")
    if rng.random() < 0.5:
        w.raw(f"{w.kw('RUN')} --mount=type=cache,target=/go/pkg/mod go mod download")
    else:
        w.add("RUN", "go mod download")
    w.add("COPY", ". .")
    w.run_chain(
        [
            'CGO_ENABLED=0 GOOS=linux go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/app ./cmd/app',
            "go test ./...",
        ][: rng.randint(1, 2)],
        comments=True,
    )
    w.blank()
    final = rng.choice(["scratch", "gcr.io/distroless/static-debian12", "alpine:3.19", "alpine"])
    w.add("FROM", final)
    if final.startswith("alpine"):
        w.add("RUN", "apk add --no-cache ca-certificates")
    w.add("COPY", "--from=builder /out/app /usr/local/bin/app")
    if rng.random() < 0.5:
        w.add("USER", "65532:65532")
    w.add("ENTRYPOINT", '["/usr/local/bin/app"]')


def _alpine(w: _Writer) -> None:
    rng = w.rng
    w.add("FROM", rng.choice(["alpine:3.19", "alpine", "alpine:edge"]))
    pkgs = " ".join(_pick(rng, _APK_PACKAGES, 2, 6))
    installs = [f"apk add --no-cache {pkgs}", f"apk update && apk add {pkgs}", f"apk --update add {pkgs}"]
    w.add("RUN", rng.choice(installs))
    if rng.random() < 0.4:
        w.add("ADD", rng.choice(["https://example.com/app.tar.gz /tmp/", "app.tar.gz /opt/", "config /etc/app/"]))
    w.add("ENV", rng.choice(["APP_HOME /opt/app", "APP_HOME=/opt/app PATH=/opt/app/bin:$PATH"]))
    w.add("COPY", "entrypoint.sh /usr/local/bin/")
    if rng.random() < 0.5:
        w.add("RUN", "chmod +x /usr/local/bin/entrypoint.sh")
    w.add("VOLUME", rng.choice(["/data", '["/data", "/var/log/app"]']))
    w.add("ENTRYPOINT", rng.choice(['["/sbin/tini", "--", "entrypoint.sh"]', "entrypoint.sh"]))


def _yum(w: _Writer) -> None:
    rng = w.rng
    w.add("FROM", rng.choice(["centos:7", "fedora:39", "rockylinux:9", "registry.access.redhat.com/ubi9/ubi"]))
    pkgs = " ".join(_pick(rng, _YUM_PACKAGES, 1, 4))
    tool = rng.choice(["yum", "dnf"])
    w.add("RUN", f"{tool} -y update && {tool} -y install {pkgs} && {tool} clean all")
    if rng.random() < 0.4:
        w.add("LABEL", 'name="service" vendor="Example" version="1.0"')
    w.add("EXPOSE", "80")
    w.add("CMD", rng.choice(['["/usr/sbin/httpd", "-D", "FOREGROUND"]', "/run.sh"]))


def _heredoc(w: _Writer) -> None:
    rng = w.rng
    if not any(line.startswith("# syntax") for line in w.lines):
        w.lines.insert(0, "# syntax=docker/dockerfile:1.4")
    w.add("FROM", rng.choice(_DEBIAN_BASES))
    w.raw(
        w.kw("RUN")
        + " <<EOF\nset -e\napt-get update\napt-get install -y "
        + " ".join(_pick(rng, _APT_PACKAGES, 1, 4))
        + "\nrm -rf /var/lib/apt/lists/*\nEOF"
    )
    w.raw(w.kw("COPY") + ' <<-"CONF" /etc/app/app.conf\n\tlisten = 8080\n\troot = $HOME\n\tCONF')
    if rng.random() < 0.5:
        w.raw(w.kw("RUN") + " <<A cat > /a.txt && cat <<B > /b.txt\nfirst\nA\nsecond\nB")
    if rng.random() < 0.5:
        w.raw(w.kw("RUN") + " python3 <<PY\nprint('hello')\nPY")
    w.add("CMD", '["/bin/bash"]')


def _windows(w: _Writer) -> None:
    """The backtick escape of Windows images, with continuations written in it."""
    rng = w.rng
    w.lines.insert(0, "# escape=`")
    w.add("FROM", "mcr.microsoft.com/windows/servercore:ltsc2022")
    w.add("SHELL", '["powershell", "-Command", "$ErrorActionPreference = \'Stop\';"]')
    w.raw(
        w.kw("RUN") + " Invoke-WebRequest -Uri https://example.com/app.zip -OutFile app.zip ; `\n"
        "    Expand-Archive app.zip -DestinationPath C:\\app ; `\n    Remove-Item app.zip"
    )
    w.add("WORKDIR", "C:\\app")
    if rng.random() < 0.5:
        w.add("ENV", "APP_ENV=production")
    w.add("ENTRYPOINT", '["C:\\\\app\\\\app.exe"]')


def _onbuild(w: _Writer) -> None:
    w.add("FROM", w.rng.choice(["ruby:3.3", "openjdk:17", "php:8.2-apache"]))
    w.add("ONBUILD", "COPY . /app")
    w.add("ONBUILD", "RUN make -C /app")
    w.add("ARG", "BUILD_DATE")
    w.add("LABEL", "org.opencontainers.image.created=$BUILD_DATE")
    w.add("STOPSIGNAL", "SIGTERM")
    w.add("CMD", "make run")


_TEMPLATES: tuple[tuple[str, Callable[[_Writer], None], int], ...] = (
    ("apt", _apt, 26),
    ("pip", _pip, 18),
    ("npm", _npm, 16),
    ("go", _go, 12),
    ("alpine", _alpine, 10),
    ("yum", _yum, 6),
    ("heredoc", _heredoc, 6),
    ("windows", _windows, 3),
    ("onbuild", _onbuild, 3),
)


def make_dockerfile(rng: random.Random) -> tuple[str, str]:
    """One Dockerfile: (template name, text). Drawn from ``rng`` only, so a seed fixes the result."""
    name, template, _ = rng.choices(_TEMPLATES, [t[2] for t in _TEMPLATES])[0]
    w = _Writer(rng, lower=rng.random() < 0.12)
    _header(w)
    template(w)
    if rng.random() < 0.3:  # a second, unrelated stage appended: multi-stage files are common
        w.blank()
        _alpine(w)
    if rng.random() < 0.25:
        w.blank()
        w.comment("end of file")
    text = w.text()
    if rng.random() < 0.1:
        text = text.replace("\n", "\r\n")
    if rng.random() < 0.05:
        text = text.rstrip("\r\n")  # no newline at the end of the file
    return name, text


def generate(folder: Path, count: int = 1000, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write ``count`` Dockerfiles as ``folder/NNNN-template/Dockerfile``; returns their paths in order."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        name, text = make_dockerfile(rng)
        target = folder / f"{i:04d}-{name}" / "Dockerfile"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
        paths.append(target)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    paths = generate(args.folder, args.count, args.seed)
    print(f"wrote {len(paths)} Dockerfiles under {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
