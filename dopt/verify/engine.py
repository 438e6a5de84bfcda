"""A thin wrapper over the ``docker`` command-line client.

Verification has to run real builds, and the CLI is the one interface that is
present wherever Docker is: it honours ``DOCKER_HOST``, contexts and the
user's credentials without us reimplementing any of it.  Everything here is a
subprocess call; nothing talks to the daemon's socket directly.

Every image and container this module creates carries a per-``Engine`` token
(unique tags, a label on containers) so :meth:`Engine.cleanup` removes exactly
what it made and never touches anything else on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

#: The Debian 20.10 client drives the engine's built-in BuildKit without the
#: buildx plugin; newer clients on PATH may lack buildx and then cannot.
PREFERRED_CLIENT = "/usr/bin/docker"
CONTAINER_LABEL = "dopt.verify"


class EngineError(RuntimeError):
    """A docker command failed in a way the caller cannot recover from."""


class NoEngineError(EngineError):
    """No usable Docker engine: missing client or unreachable daemon.

    The message is a single line so the CLI can print it and exit 2.
    """


@dataclass(frozen=True)
class EngineInfo:
    """What the engine and client can do; decides which builder we use."""

    client: str
    client_version: str
    server_version: str
    api_version: str
    os_arch: str
    buildkit: bool


@dataclass(frozen=True)
class BuildStep:
    """One Dockerfile instruction as the builder reported it."""

    number: int
    instruction: str
    cached: bool
    stage: str | None = None

    @property
    def is_from(self) -> bool:
        """FROM steps are base-image lookups; they say nothing about the layer cache."""
        return self.instruction.upper().startswith("FROM ")

    @property
    def label(self) -> str:
        prefix = f"{self.stage} " if self.stage else ""
        return f"[{prefix}{self.number}] {self.instruction}"


@dataclass
class BuildResult:
    """Outcome of one ``docker build``; failures are data, not exceptions.

    A failing build is a normal verification outcome (the original might not
    build, or the fix might break it), so callers inspect :attr:`ok` instead of
    catching errors.
    """

    ok: bool
    tag: str
    seconds: float
    builder: str
    steps: list[BuildStep] = field(default_factory=list)
    image_id: str | None = None
    failed_step: str | None = None
    error: str | None = None
    log: str = ""

    @property
    def instruction_steps(self) -> list[BuildStep]:
        return [step for step in self.steps if not step.is_from]

    @property
    def cache_hits(self) -> int:
        return sum(1 for step in self.instruction_steps if step.cached)


@dataclass(frozen=True)
class ImageInfo:
    """The parts of ``docker image inspect`` that verification compares."""

    id: str
    size: int
    layers: tuple[str, ...]
    config: dict[str, Any]

    @property
    def layer_count(self) -> int:
        return len(self.layers)


@dataclass(frozen=True)
class SmokeResult:
    """Result of the smoke command run next to a container."""

    passed: bool
    exit_code: int
    output: str
    attempts: int


@dataclass(frozen=True)
class RunResult:
    """How a container behaved: still running, or exited with a code."""

    state: str  # "running", "exited" or "error"
    exit_code: int | None
    logs: str
    smoke: SmokeResult | None = None

    def outcome(self) -> tuple[object, ...]:
        """The facts two runs must share for behaviour to count as unchanged."""
        smoke = None
        if self.smoke is not None:
            smoke = (self.smoke.passed, self.smoke.output.strip() if self.smoke.passed else None)
        exit_code = self.exit_code if self.state == "exited" else None
        return (self.state, exit_code, smoke)

    def describe(self) -> str:
        text = "still running" if self.state == "running" else f"{self.state} (exit code {self.exit_code})"
        if self.smoke is not None:
            verdict = "passed" if self.smoke.passed else f"failed (exit code {self.smoke.exit_code})"
            text += f"; smoke {verdict}"
        return text


_BUILDKIT_STEP = re.compile(r"^#(\d+) \[(?:(\S+) )?(\d+)/(\d+)\] (.*)$")
_BUILDKIT_CACHED = re.compile(r"^#(\d+) CACHED\s*$")
_BUILDKIT_ERROR = re.compile(r"^#(\d+) ERROR:? (.*)$")
_LEGACY_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILDKIT_MISSING = re.compile(r"buildx component is missing|BuildKit is not supported|buildkit not supported", re.I)


def parse_buildkit_log(log: str) -> tuple[list[BuildStep], str | None, str | None]:
    """Steps, failing step and error from ``--progress=plain`` output.

    BuildKit prints each vertex as ``#N [stage i/n] INSTRUCTION`` and later
    ``#N CACHED`` / ``#N DONE`` / ``#N ERROR: ...`` for the same ``N``.
    """
    headers: dict[int, tuple[str | None, int, str]] = {}
    cached: set[int] = set()
    failed: tuple[int, str] | None = None
    for line in log.splitlines():
        if match := _BUILDKIT_STEP.match(line):
            headers[int(match[1])] = (match[2], int(match[3]), match[5])
        elif match := _BUILDKIT_CACHED.match(line):
            cached.add(int(match[1]))
        elif (match := _BUILDKIT_ERROR.match(line)) and failed is None:
            failed = (int(match[1]), match[2])
    steps = [
        BuildStep(number=number, instruction=text, cached=vertex in cached, stage=stage)
        for vertex, (stage, number, text) in sorted(headers.items())
    ]
    if failed is None:
        return steps, None, None
    vertex, message = failed
    header = headers.get(vertex)
    step = None
    if header is not None:
        stage, number, text = header
        step = BuildStep(number=number, instruction=text, cached=False, stage=stage).label
    return steps, step, message


def parse_legacy_log(log: str, ok: bool) -> tuple[list[BuildStep], str | None, str | None]:
    """Steps, failing step and error from the classic builder's output."""
    steps: list[BuildStep] = []
    for line in log.splitlines():
        if match := _LEGACY_STEP.match(line):
            steps.append(BuildStep(number=int(match[1]), instruction=match[3], cached=False))
        elif line.strip() == "---> Using cache" and steps:
            last = steps[-1]
            steps[-1] = BuildStep(number=last.number, instruction=last.instruction, cached=True)
    if ok:
        return steps, None, None
    error_lines = [line for line in log.splitlines() if line.strip()]
    error = error_lines[-1] if error_lines else "build failed"
    return steps, steps[-1].label if steps else None, error


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def find_client() -> str:
    """The docker client to use: ``$DOPT_DOCKER``, the Debian client, or PATH."""
    configured = os.environ.get("DOPT_DOCKER")
    if configured:
        return configured
    if Path(PREFERRED_CLIENT).exists():
        return PREFERRED_CLIENT
    found = shutil.which("docker")
    if found is None:
        raise NoEngineError("no Docker engine: the docker client is not installed")
    return found


class Engine:
    """Runs docker commands and remembers what it created so it can clean up.

    Use as a context manager (or call :meth:`cleanup`) so temporary images and
    containers are removed even when verification fails half-way.
    """

    def __init__(self, client: str | None = None, *, keep: bool = False, buildkit: bool | None = None) -> None:
        self.client = client or find_client()
        self.force_buildkit = buildkit
        self.token = uuid.uuid4().hex[:10]
        self.keep = keep
        self._tags: list[str] = []
        self._containers: list[str] = []
        self._info: EngineInfo | None = None
        self._counter = 0

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- plumbing -----------------------------------------------------------------

    def _docker(
        self,
        args: Sequence[str],
        *,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                [self.client, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise NoEngineError(f"no Docker engine: cannot run {self.client}") from exc
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"docker {args[0]} timed out after {timeout:.0f}s") from exc
        if check and proc.returncode != 0:
            raise EngineError(f"docker {' '.join(args[:2])} failed: {_last_line(proc.stderr)}")
        return proc

    # -- detection ----------------------------------------------------------------

    def info(self) -> EngineInfo:
        """Probe client and daemon; raise :class:`NoEngineError` if unusable."""
        if self._info is not None:
            return self._info
        proc = self._docker(["version", "--format", "{{json .}}"], timeout=30, check=False)
        try:
            data = json.loads(proc.stdout.strip().splitlines()[0]) if proc.stdout.strip() else {}
        except json.JSONDecodeError:
            data = {}
        server = data.get("Server")
        if proc.returncode != 0 or not server:
            reason = _last_line(proc.stderr) or "the Docker daemon did not answer"
            raise NoEngineError(f"no Docker engine: {reason}")
        client_version = str(data.get("Client", {}).get("Version", "unknown"))
        self._info = EngineInfo(
            client=self.client,
            client_version=client_version,
            server_version=str(server.get("Version", "unknown")),
            api_version=str(server.get("ApiVersion", "unknown")),
            os_arch=f"{server.get('Os', '?')}/{server.get('Arch', '?')}",
            buildkit=(
                self._client_has_buildkit(client_version) if self.force_buildkit is None else self.force_buildkit
            ),
        )
        return self._info

    def _client_has_buildkit(self, client_version: str) -> bool:
        """Whether ``DOCKER_BUILDKIT=1 docker build`` works with this client.

        Clients before 23.0 embed BuildKit support; from 23.0 on ``build`` is an
        alias for buildx, which may be missing.
        """
        if self._docker(["buildx", "version"], timeout=30, check=False).returncode == 0:
            return True
        major = re.match(r"(\d+)", client_version)
        return major is not None and 18 <= int(major[1]) < 23

    def has_image(self, ref: str) -> bool:
        return self._docker(["image", "inspect", ref], timeout=30, check=False).returncode == 0

    # -- images -------------------------------------------------------------------

    def new_tag(self, label: str) -> str:
        """A tag no one else uses, remembered for cleanup."""
        self._counter += 1
        safe = re.sub(r"[^a-z0-9_.-]+", "-", label.lower()).strip("-.") or "image"
        tag = f"dopt-verify-{self.token}:{safe}-{self._counter}"
        self._tags.append(tag)
        return tag

    def build(
        self,
        context: Path,
        dockerfile: Path,
        *,
        label: str = "build",
        no_cache: bool = False,
        timeout: float = 1800,
    ) -> BuildResult:
        """Build ``dockerfile`` with ``context``; BuildKit when available.

        The classic builder is the fallback because it works with every client;
        BuildKit is preferred because its step cache is what most users have.
        """
        tag = self.new_tag(label)
        buildkit = self.info().buildkit
        handle, iid_name = tempfile.mkstemp(prefix="dopt-iid-")
        os.close(handle)
        iidfile = Path(iid_name)
        args = ["build", "-f", str(dockerfile), "-t", tag, "--iidfile", str(iidfile)]
        if no_cache:
            args.append("--no-cache")
        if buildkit:
            args += ["--progress=plain"]
        else:
            args += ["--force-rm"]
        args.append(str(context))
        started = time.monotonic()
        try:
            proc = self._docker(args, timeout=timeout, env={"DOCKER_BUILDKIT": "1" if buildkit else "0"}, check=False)
            if buildkit and proc.returncode != 0 and _BUILDKIT_MISSING.search(proc.stderr):
                # Detection was too optimistic (e.g. a broken buildx plugin): use the classic builder.
                iidfile.unlink(missing_ok=True)
                self._info = replace(self.info(), buildkit=False)
                return self.build(context, dockerfile, label=label, no_cache=no_cache, timeout=timeout)
        except NoEngineError:
            iidfile.unlink(missing_ok=True)
            raise
        except EngineError as exc:
            iidfile.unlink(missing_ok=True)
            return BuildResult(
                ok=False,
                tag=tag,
                seconds=time.monotonic() - started,
                builder="buildkit" if buildkit else "legacy",
                error=str(exc),
            )
        seconds = time.monotonic() - started
        log = proc.stdout + proc.stderr
        ok = proc.returncode == 0
        if buildkit:
            steps, failed_step, error = parse_buildkit_log(log)
        else:
            steps, failed_step, error = parse_legacy_log(log, ok)
        image_id = None
        if ok:
            image_id = iidfile.read_text().strip() or None
        iidfile.unlink(missing_ok=True)
        if not ok and error is None:
            error = _last_line(log) or f"docker build exited with {proc.returncode}"
        return BuildResult(
            ok=ok,
            tag=tag,
            seconds=seconds,
            builder="buildkit" if buildkit else "legacy",
            steps=steps,
            image_id=image_id,
            failed_step=failed_step,
            error=error,
            log=log,
        )

    def inspect_image(self, ref: str) -> ImageInfo:
        proc = self._docker(["image", "inspect", ref, "--format", "{{json .}}"], timeout=30)
        data = json.loads(proc.stdout)
        return ImageInfo(
            id=data["Id"],
            size=int(data["Size"]),
            layers=tuple(data.get("RootFS", {}).get("Layers") or ()),
            config=data.get("Config") or {},
        )

    def save(self, ref: str, dest: Path) -> Path:
        """``docker save`` into ``dest``; layer analysis reads the tarball."""
        self._docker(["save", "-o", str(dest), ref], timeout=900)
        return dest

    def remove_images(self, refs: Sequence[str]) -> None:
        """Untag images; Docker deletes an image once its last tag is gone."""
        if refs:
            self._docker(["image", "rm", *refs], timeout=120, check=False)

    # -- containers ---------------------------------------------------------------

    def create_container(self, ref: str, command: Sequence[str] | None = None) -> str:
        """Create (not start) a container with no network, remembered for cleanup.

        ``--network none`` keeps application code we run off every network but
        its own loopback; smoke checks join that namespace instead.
        """
        args = ["create", "--network", "none", "--label", f"{CONTAINER_LABEL}={self.token}", ref]
        proc = self._docker([*args, *(command or [])], timeout=60)
        container = proc.stdout.strip().splitlines()[-1]
        self._containers.append(container)
        return container

    def remove_container(self, container: str) -> None:
        self._docker(["rm", "-f", "-v", container], timeout=60, check=False)
        if container in self._containers:
            self._containers.remove(container)

    @contextlib.contextmanager
    def export(self, ref: str) -> Iterator[IO[bytes]]:
        """Stream the flattened file system of ``ref`` as a tar (``docker export``)."""
        container = self.create_container(ref)
        proc = subprocess.Popen(
            [self.client, "export", container],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            yield proc.stdout
            proc.stdout.read()
            if proc.wait(timeout=300) != 0:
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise EngineError(f"docker export failed: {_last_line(stderr)}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.remove_container(container)

    def _state(self, container: str) -> tuple[str, int | None]:
        proc = self._docker(
            ["inspect", container, "--format", "{{.State.Status}} {{.State.ExitCode}}"],
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            return "error", None
        status, _, code = proc.stdout.strip().partition(" ")
        if status in {"running", "restarting", "created"}:
            return "running", None
        return "exited", int(code or 0)

    def run(
        self,
        ref: str,
        *,
        command: Sequence[str] | None = None,
        settle: float = 3.0,
        smoke: str | None = None,
        smoke_image: str | None = None,
        timeout: float = 30.0,
    ) -> RunResult:
        """Start ``ref``, watch it for ``settle`` seconds, then run the smoke check.

        The smoke command runs with ``sh -c`` in ``smoke_image`` sharing the
        container's network namespace, so it can reach ``127.0.0.1:<port>`` even
        when the application image has no curl or shell.  Without a helper image
        it runs inside the container with ``docker exec``.  It is retried until it
        passes or ``timeout`` runs out, because servers need a moment to listen.
        """
        container = self.create_container(ref, command)
        try:
            started = self._docker(["start", container], timeout=60, check=False)
            if started.returncode != 0:
                # e.g. the command does not exist in the image: a behaviour, not an engine fault
                return RunResult(state="error", exit_code=None, logs=started.stderr.strip())
            deadline = time.monotonic() + settle
            state, code = self._state(container)
            while state == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
                state, code = self._state(container)
            smoke_result = None
            if smoke is not None:
                smoke_result = self._smoke(container, smoke, smoke_image, timeout)
                state, code = self._state(container)
            logs = self._docker(["logs", container], timeout=30, check=False)
            return RunResult(state=state, exit_code=code, logs=logs.stdout + logs.stderr, smoke=smoke_result)
        finally:
            self.remove_container(container)

    def _smoke(self, container: str, smoke: str, smoke_image: str | None, timeout: float) -> SmokeResult:
        if smoke_image:
            args = [
                "run",
                "--rm",
                "--network",
                f"container:{container}",
                "--label",
                f"{CONTAINER_LABEL}={self.token}",
                "--entrypoint",
                "sh",
                smoke_image,
                "-c",
                smoke,
            ]
        else:
            args = ["exec", container, "sh", "-c", smoke]
        deadline = time.monotonic() + timeout
        attempts = 0
        while True:
            attempts += 1
            remaining = max(deadline - time.monotonic(), 5.0)
            try:
                proc = self._docker(args, timeout=remaining, check=False)
                code, output = proc.returncode, proc.stdout + proc.stderr
            except EngineError as exc:
                code, output = 124, str(exc)
            if code == 0:
                return SmokeResult(passed=True, exit_code=0, output=output, attempts=attempts)
            state, _ = self._state(container)
            if state != "running" or time.monotonic() + 1 > deadline:
                return SmokeResult(passed=False, exit_code=code, output=output, attempts=attempts)
            time.sleep(1)

    # -- cleanup ------------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove every container and tag this engine created (unless ``keep``)."""
        for container in list(self._containers):
            self.remove_container(container)
        if not self.keep:
            tags, self._tags = self._tags, []
            existing = [tag for tag in tags if self.has_image(tag)]
            self.remove_images(existing)
