"""Pinning FROM images end to end: `dopt fix --diff` in a subprocess against real registries.

Docker Hub is out of reach here, so ``docker.io`` look-ups go to a local ``docker-registry``
configured as its mirror, exactly as Docker's ``registry-mirrors`` setting sends a daemon's Hub
pulls to a mirror. The registry is seeded through the distribution API (blob uploads and
manifest PUTs, no Docker engine needed) with ``library/python`` and ``library/alpine`` tag sets
whose tags share digests as on Docker Hub, ``alpine`` as a multi-platform OCI index.

The command line is run with ``--pin``/``--pin-specificity``/``--offline``/``--update-pins``/
``--registry-mirror``. While ``dopt/cli.py`` lacks those switches, a small launcher applies the
proposed wiring from outside (``dopt.registry.pinning.registry_options`` merged into each file's
settings); once the switches exist the real command is run instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dopt.registry import RegistryClient, RegistryResponseError
from dopt.registry.pinning import STALE, resolve_for_documents
from dopt.registry.resolve import PinMode, PinPolicy, Resolution

from .servers import (
    DOCKER_V2,
    Fault,
    RegistryFront,
    RegistryProcess,
    free_port,
    push_image_blobs,
    put_manifest,
    require_tool,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
USER, PASSWORD = "carol", "pin-me-7"

# Tag sets sharing digests the way Docker Hub's official images do (image name -> tags).
PYTHON = {
    "py-3.12.1": ["latest", "3", "3.12", "3.12.1"],
    "py-3.12.1-slim": ["slim", "3-slim", "3.12-slim", "3.12.1-slim"],
    "py-3.12.0": ["3.12.0"],
    "py-3.11.4-slim-old": ["3.11.4-slim"],  # overwritten below: the tag gets rebuilt
    "py-3.11.4-slim": ["3.11.4-slim"],
    "py-3.11.9-slim": ["3.11.9-slim", "3.11-slim"],
}
ALPINE_TAGS = ["latest", "3", "3.19", "3.19.1"]
APP_TAGS = ["latest", "1", "1.0", "1.0.3"]


@dataclass
class Seed:
    registry: RegistryProcess
    auth_registry: RegistryProcess
    digests: dict[str, str] = field(default_factory=dict)  # "repo:image name" -> manifest digest
    index_digest: str = ""
    platform_digests: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.registry.host

    def python(self, image: str) -> str:
        return self.digests[f"library/python:{image}"]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    root = tmp_path_factory.mktemp("pinning-registries")
    storage = root / "storage"
    registry = RegistryProcess(root / "open", storage)
    htpasswd = require_tool("htpasswd", "apache2-utils")
    line = subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout.strip()
    (root / "htpasswd").write_text(line + "\n")
    auth_registry = None
    try:
        auth_registry = RegistryProcess(
            root / "auth", storage, auth={"htpasswd": {"realm": "dopt-pin", "path": str(root / "htpasswd")}}
        )
        seeded = Seed(registry, auth_registry)
        host = registry.host
        for name, tags in PYTHON.items():
            body = push_image_blobs(host, "library/python", name)
            for tag in tags:
                seeded.digests[f"library/python:{name}"] = put_manifest(host, "library/python", tag, DOCKER_V2, body)
        entries = []
        for architecture in ("amd64", "arm64"):
            body = push_image_blobs(host, "library/alpine", f"alpine-3.19.1-{architecture}", architecture)
            digest = put_manifest(host, "library/alpine", f"build-{architecture}", DOCKER_V2, body)
            seeded.platform_digests.append(digest)
            entries.append(
                {
                    "mediaType": DOCKER_V2,
                    "digest": digest,
                    "size": len(body),
                    "platform": {"architecture": architecture, "os": "linux"},
                }
            )
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        for tag in ALPINE_TAGS:
            seeded.index_digest = put_manifest(host, "library/alpine", tag, OCI_INDEX, index)
        body = push_image_blobs(host, "team/app", "app-1.0.3")
        for tag in APP_TAGS:
            seeded.digests["team/app:1.0.3"] = put_manifest(host, "team/app", tag, DOCKER_V2, body)
        yield seeded
    finally:
        registry.stop()
        if auth_registry is not None:
            auth_registry.stop()


# --- running the command --------------------------------------------------------------------

LAUNCHER = '''
"""`dopt` with the registry switches proposed for dopt/cli.py, applied from outside."""
import sys
from pathlib import Path

from dopt import cli
from dopt.registry.pinning import registry_options

extra, extend, args = {}, [], []
argv = iter(sys.argv[1:])
for arg in argv:
    name, eq, value = arg.partition("=")
    if name in ("--pin", "--pin-specificity", "--registry-mirror"):
        value = value if eq else next(argv)
        if name == "--registry-mirror":
            registry, _, url = value.partition("=")
            extra.setdefault("registry-mirrors", {}).setdefault(registry, []).append(url)
        else:
            extra[name[2:]] = value
    elif arg == "--offline":
        extra["registry-offline"] = True
    elif arg == "--update-pins":
        extra["update-pins"] = True
        extend.append("DO410")
    else:
        args.append(arg)

original = cli._settings


def settings_with_pins(opts, target):
    settings = original(opts, target).merged(extend_select=extend, rule_options=extra)
    if Path(target).is_file():
        try:
            found = registry_options([Path(target).read_text()], settings.rule_options)
        except ValueError as err:
            raise cli.UsageError(str(err)) from None
        settings = settings.merged(rule_options=found)
    return settings


cli._settings = settings_with_pins
sys.exit(cli.main(args))
'''


def _cli_has_pin_switch(cwd: Path) -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "dopt", "fix", "--help"], capture_output=True, text=True, env=_base_env(), cwd=cwd
    )
    return "--pin" in result.stdout


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOPT_DEBUG",)}
    env["NO_COLOR"] = "1"
    return env


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("launcher")
    if _cli_has_pin_switch(folder):
        return [sys.executable, "-m", "dopt"]
    launcher = folder / "dopt_with_pins.py"
    launcher.write_text(LAUNCHER)
    return [sys.executable, str(launcher)]


@dataclass
class Project:
    """A folder with a Dockerfile, its own registry cache and Docker config, and a way to run dopt."""

    root: Path
    command: list[str]
    seed: Seed
    settings: dict[str, object] = field(default_factory=lambda: {"registry-mirror-fallback": False})

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def docker_config(self) -> Path:
        return self.root / "docker-config"

    def write(self, dockerfile: str) -> Path:
        path = self.root / "Dockerfile"
        path.write_text(dockerfile)
        lines = ["[tool.dopt.rules]"] + [f"{key} = {json.dumps(value)}" for key, value in self.settings.items()]
        (self.root / "pyproject.toml").write_text("\n".join(lines) + "\n")
        return path

    def run(self, *args: str, mirror: bool = True) -> Run:
        env = _base_env()
        env["XDG_CACHE_HOME"] = str(self.cache)
        env["DOCKER_CONFIG"] = str(self.docker_config)
        extra = ["--registry-mirror", f"docker.io=http://{self.seed.host}"] if mirror else []
        done = subprocess.run(
            [*self.command, *args, *extra, "Dockerfile"],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def project(tmp_path: Path, command: list[str], seed: Seed) -> Project:
    (tmp_path / "docker-config").mkdir()
    return Project(tmp_path, command, seed)


def _added(diff: str) -> list[str]:
    return [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]


def _removed(diff: str) -> list[str]:
    return [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]


ARTICLE = """FROM python:latest
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
CMD ["python", "app.py"]
"""


# --- the article's examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "specificity", "python", "alpine"),
    [
        ("both", "patch", "python:3.12.1@{py}", "alpine:3.19.1@{idx}"),
        ("tag", "patch", "python:3.12.1", "alpine:3.19.1"),
        ("digest", "patch", "python:latest@{py}", "alpine:latest@{idx}"),
        ("both", "minor", "python:3.12@{py}", "alpine:3.19@{idx}"),
        ("both", "major", "python:3@{py}", "alpine:3@{idx}"),
    ],
)
def test_article_examples_are_pinned(
    project: Project, seed: Seed, pin: str, specificity: str, python: str, alpine: str
) -> None:
    project.write(ARTICLE + "\nFROM alpine\nRUN echo done\n")
    done = project.run("fix", "--diff", "--select", "DO400", "--pin", pin, "--pin-specificity", specificity)
    assert done.code == 1, done.stderr
    values = {"py": seed.python("py-3.12.1"), "idx": seed.index_digest}
    assert _added(done.stdout) == [f"FROM {python.format(**values)}", f"FROM {alpine.format(**values)}"]
    assert _removed(done.stdout) == ["FROM python:latest", "FROM alpine"]
    assert "Would fix 2 finding(s) in 1 file(s); 0 remaining" in done.stderr


def test_findings_explain_the_choice(project: Project, seed: Seed) -> None:
    project.write(ARTICLE + "FROM alpine\n")
    done = project.run("check", "--select", "DO400", "--pin", "both")
    assert done.code == 1
    python_line, alpine_line = done.stdout.splitlines()
    digest = seed.python("py-3.12.1")
    assert "Dockerfile:1:6: DO400 python:latest uses the tag latest" in python_line
    assert f"python:latest points to {digest} (a single-platform manifest)" in python_line
    assert "tags sharing that digest: 3.12.1, 3.12, 3, latest" in python_line
    assert "most specific tag (no variant, up to patch level): 3.12.1" in python_line
    assert f"(looked up at the registry mirror {seed.host})" in python_line
    assert "alpine has no tag, so it means :latest" in alpine_line
    assert f"alpine:latest points to {seed.index_digest} (a multi-platform index)" in alpine_line


def test_multi_platform_image_is_pinned_to_its_index(project: Project, seed: Seed) -> None:
    project.write("FROM alpine:3.19\n")
    done = project.run("fix", "--diff", "--select", "DO401", "--pin", "both")
    assert _added(done.stdout) == [f"FROM alpine:3.19.1@{seed.index_digest}"]
    assert seed.index_digest not in seed.platform_digests


def test_variant_is_kept(project: Project, seed: Seed) -> None:
    project.write("FROM python:3-slim AS base\nFROM python:3.12\n")
    done = project.run("fix", "--diff", "--select", "DO401", "--pin", "both")
    assert _added(done.stdout) == [
        f"FROM python:3.12.1-slim@{seed.python('py-3.12.1-slim')} AS base",
        f"FROM python:3.12.1@{seed.python('py-3.12.1')}",
    ]


def test_arg_default_is_pinned(project: Project, seed: Seed) -> None:
    project.write("ARG BASE=python:latest\nFROM ${BASE}\nRUN true\n")
    done = project.run("fix", "--diff", "--select", "DO400", "--pin", "both")
    assert _added(done.stdout) == [f"ARG BASE=python:3.12.1@{seed.python('py-3.12.1')}"]


def test_without_pinning_nothing_is_looked_up(project: Project) -> None:
    project.write(ARTICLE)
    done = project.run("fix", "--diff", "--select", "DO400", mirror=False)
    assert (done.code, done.stdout) == (0, "")
    checked = project.run("check", "--select", "DO400", mirror=False)
    assert "`dopt fix --pin both`" in checked.stdout
    assert not project.cache.exists()


# --- credentials -------------------------------------------------------------------------------


def test_auth_required_registry(project: Project, seed: Seed) -> None:
    host = seed.auth_registry.host
    project.write(f"FROM {host}/team/app\n")
    refused = project.run("check", "--select", "DO400", "--pin", "both")
    assert refused.code == 1
    assert "the registry look-up failed, so nothing was changed" in refused.stdout
    assert "requires authentication (HTTP 401)" in refused.stdout
    assert f"docker login {host}" in refused.stdout
    assert project.run("fix", "--diff", "--select", "DO400", "--pin", "both").stdout == ""

    import base64

    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (project.docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    done = project.run("fix", "--diff", "--select", "DO400", "--pin", "both")
    assert _added(done.stdout) == [f"FROM {host}/team/app:1.0.3@{seed.digests['team/app:1.0.3']}"]


# --- offline and failures ------------------------------------------------------------------------


def test_offline_uses_the_cache_and_never_guesses(project: Project, seed: Seed) -> None:
    project.write(ARTICLE)
    cold = project.run("check", "--select", "DO400", "--pin", "both", "--offline")
    assert "offline mode" in cold.stdout and "not in the cache" in cold.stdout
    assert project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--offline").stdout == ""

    online = project.run("fix", "--diff", "--select", "DO400", "--pin", "both")
    assert _added(online.stdout) == [f"FROM python:3.12.1@{seed.python('py-3.12.1')}"]
    offline = project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--offline")
    assert offline.stdout == online.stdout


def test_offline_answer_from_an_expired_cache_entry_is_only_an_unsafe_fix(project: Project, seed: Seed) -> None:
    project.write(ARTICLE)
    assert project.run("fix", "--diff", "--select", "DO400", "--pin", "both").code == 1
    for entry in project.cache.rglob("*.json"):
        data = json.loads(entry.read_text())
        data["stored_at"] = 0  # written in 1970: far older than the cache's TTL
        entry.write_text(json.dumps(data))
    safe = project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--offline")
    assert safe.stdout == ""
    checked = project.run("check", "--select", "DO400", "--pin", "both", "--offline")
    assert "old cache entry (offline)" in checked.stdout and "[unsafe fix: --unsafe-fixes]" in checked.stdout
    unsafe = project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--offline", "--unsafe-fixes")
    assert _added(unsafe.stdout) == [f"FROM python:3.12.1@{seed.python('py-3.12.1')}"]


def test_unreachable_registry_leaves_the_finding(project: Project) -> None:
    project.write(ARTICLE)
    dead = f"docker.io=http://127.0.0.1:{free_port()}"
    done = project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--registry-mirror", dead, mirror=False)
    assert (done.code, done.stdout) == (0, "")
    assert "1 remaining" in done.stderr
    checked = project.run("check", "--select", "DO400", "--pin", "both", "--registry-mirror", dead, mirror=False)
    assert "the registry look-up failed, so nothing was changed" in checked.stdout
    assert "cannot reach" in checked.stdout.lower() or "could not connect" in checked.stdout.lower()


def test_unknown_repository_and_tag(project: Project, seed: Seed) -> None:
    project.write("FROM nosuchimage\nFROM python:9.9-slim\n")
    done = project.run("fix", "--diff", "--select", "DO400,DO401", "--pin", "both")
    assert done.stdout == ""
    checked = project.run("check", "--select", "DO400,DO401", "--pin", "both")
    first, second = checked.stdout.splitlines()
    assert "repository library/nosuchimage not found" in first
    assert "not found" in second and "similar tags that exist" in second


def test_mirror_failure_falls_back_to_the_registry(project: Project, seed: Seed) -> None:
    # Docker only mirrors Docker Hub; the same fallback is tested on a registry that can be reached.
    project.settings = {"registry-mirror-fallback": True}
    project.write(f"FROM {seed.host}/library/python\n")
    dead = f"{seed.host}=http://127.0.0.1:{free_port()}"
    done = project.run("fix", "--diff", "--select", "DO400", "--pin", "both", "--registry-mirror", dead, mirror=False)
    assert _added(done.stdout) == [f"FROM {seed.host}/library/python:3.12.1@{seed.python('py-3.12.1')}"]


# --- update mode ---------------------------------------------------------------------------------


def test_update_mode_bumps_pins_that_fell_behind(project: Project, seed: Seed) -> None:
    old = seed.python("py-3.11.4-slim-old")
    project.write(
        f"FROM python:3.11.4-slim@{old} AS a\n"
        "FROM python:3.12.0 AS b\n"
        f"FROM python:3.12.1@{seed.python('py-3.12.0')} AS c\n"
        f"FROM python:3.12.1@{seed.python('py-3.12.1')}\n"
    )
    reported = project.run("check", "--update-pins", "--select", "DO410")
    lines = reported.stdout.splitlines()
    assert len(lines) == 3, reported.stdout
    nine = seed.python("py-3.11.9-slim")
    assert f"python:3.11-slim now points to 3.11.9-slim ({nine}; tags sharing it: 3.11.9-slim, 3.11-slim)" in lines[0]
    assert "python:3.12 now points to 3.12.1" in lines[1]
    assert "the tag 3.12.1 now points to" in lines[2] and "rebuilt since it was pinned" in lines[2]
    assert project.run("fix", "--diff", "--update-pins", "--select", "DO410").stdout == ""  # unsafe fixes
    done = project.run("fix", "--diff", "--update-pins", "--select", "DO410", "--unsafe-fixes")
    assert _added(done.stdout) == [
        f"FROM python:3.11.9-slim@{seed.python('py-3.11.9-slim')} AS a",
        "FROM python:3.12.1 AS b",
        f"FROM python:3.12.1@{seed.python('py-3.12.1')} AS c",
    ]


# --- the edge function, in process ---------------------------------------------------------------


def test_each_reference_is_looked_up_once_and_errors_stay_in_place(
    seed: Seed, make_client: Callable[..., RegistryClient]
) -> None:
    front = RegistryFront(seed.host)
    try:
        documents = [
            "FROM python:latest\nFROM alpine\n",
            "FROM alpine AS x\nFROM python:latest\nFROM x\nFROM scratch\n",
            "FROM busybox:1\n",
        ]
        with front.fault(Fault("/v2/library/busybox/", 500)):
            lookups = resolve_for_documents(
                documents,
                policy=PinPolicy(PinMode.BOTH),
                registry_mirrors={"docker.io": [f"http://{front.host}"]},
                mirror_fallback=False,
                client=make_client(),
            )
        assert set(lookups.resolutions) == {"python:latest", "alpine", "busybox:1"}
        assert front.count("/v2/library/python/manifests/latest") == 1
        assert front.count("/v2/library/alpine/manifests/latest") == 1
        python = lookups.resolutions["python:latest"]
        assert isinstance(python, Resolution) and python.text == f"python:3.12.1@{seed.python('py-3.12.1')}"
        assert isinstance(lookups.resolutions["busybox:1"], RegistryResponseError)
        assert lookups.options()[STALE] == frozenset()
    finally:
        front.stop()
