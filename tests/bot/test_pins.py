"""The bot keeps base images pinned and up to date, against a real ``docker-registry``.

Images are pushed to the registry through the distribution API (blob uploads, manifest PUTs), as
the registry tests do; ``docker.io`` look-ups go to it as Docker Hub's mirror, without fallback to
the real Hub. Each bot run gets a fresh registry cache, as a scheduled run an hour later would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from registry.servers import DOCKER_V2, RegistryProcess, free_port, push_image_blobs, put_manifest

from .conftest import PROJECT, Remote
from .forge_server import ForgeServer

BRANCH = "dopt/fixes"
PYTHON = "library/python"
CLEAN = {  # nothing for dopt to fix but the base images
    "Dockerfile": "FROM python:3.11-slim\nRUN echo hi\n",
    "services/api/Dockerfile": "FROM python:3.11-slim\nRUN echo api\n",
}


@dataclass
class Hub:
    """A registry standing in for Docker Hub, and the digest behind every tag pushed to it."""

    registry: RegistryProcess
    digests: dict[str, str] = field(default_factory=dict)

    def push(self, image: str, *tags: str) -> str:
        """Push a new image (``image`` names its content) under ``tags`` of library/python."""
        body = push_image_blobs(self.registry.host, PYTHON, image)
        for tag in tags:
            self.digests[tag] = put_manifest(self.registry.host, PYTHON, tag, DOCKER_V2, body)
        return self.digests[tags[0]]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    registry = RegistryProcess(tmp_path / "registry", tmp_path / "registry-storage")
    try:
        hub = Hub(registry)
        hub.push("3.11.4-slim", "3.11.4-slim", "3.11-slim")
        yield hub
    finally:
        registry.stop()


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker-config").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.fixture
def pin_options(hub: Hub, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The bot's pinning options, each call with a cache of its own (a later, scheduled run)."""
    runs = iter(range(1000))

    def make(**options: object) -> dict[str, object]:
        return {
            "registry-mirrors": {"docker.io": [f"http://{hub.registry.host}"]},
            "registry-mirror-fallback": False,
            "registry-cache-dir": str(tmp_path / f"cache-{next(runs)}"),
            **options,
        }

    return make


def _row(path: str, line: int, action: str, before: tuple[str, str | None], after: tuple[str, str | None]) -> str:
    def code(text: str | None) -> str:
        return f"`{text}`" if text else "none"

    return (
        f"| `python` | `{path}`:{line} | {action} | {code(before[0])} | {code(before[1])} | "
        f"{code(after[0])} | {code(after[1])} |"
    )


def test_bot_pins_base_images_and_says_from_what_to_what(bot, remote: Remote, forge: ForgeServer, hub: Hub,
                                                         pin_options) -> None:  # fmt: skip
    remote.commit(CLEAN, "Python services")
    digest = hub.digests["3.11-slim"]
    result = bot(pin_options=pin_options(pin="both"))
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.4-slim@{digest}\nRUN echo hi\n"
    assert remote.show(BRANCH, "services/api/Dockerfile") == f"FROM python:3.11.4-slim@{digest}\nRUN echo api\n"
    [pr] = forge.open_pulls(PROJECT)
    body = pr["body"]
    assert "## Base images" in body
    assert _row("Dockerfile", 1, "pinned", ("3.11-slim", None), ("3.11.4-slim", digest)) in body
    assert _row("services/api/Dockerfile", 1, "pinned", ("3.11-slim", None), ("3.11.4-slim", digest)) in body
    assert f"| `DO401` base-image-not-pinned | pin python:3.11-slim to python:3.11.4-slim@{digest} | safe |" in body
    assert "look-ups that failed" not in body

    again = bot(pin_options=pin_options(pin="both"))
    assert again.code == 0, again.err
    assert "Already up to date" in again.out
    assert [r.method for r in forge.writes()] == ["POST"]


def test_a_newer_release_updates_the_open_pull_request(bot, remote: Remote, forge: ForgeServer, hub: Hub,
                                                       pin_options) -> None:  # fmt: skip
    remote.commit(CLEAN, "Python services")
    assert bot(pin_options=pin_options(pin="both")).code == 0
    newer = hub.push("3.11.5-slim", "3.11.5-slim", "3.11-slim")

    result = bot(pin_options=pin_options(pin="both"))
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.5-slim@{newer}\nRUN echo hi\n"
    assert remote.count(f"main..{BRANCH}") == 1
    [pr] = forge.open_pulls(PROJECT)
    assert _row("Dockerfile", 1, "pinned", ("3.11-slim", None), ("3.11.5-slim", newer)) in pr["body"]
    assert [r.method for r in forge.writes()] == ["POST", "PATCH"]


def test_update_pins_bumps_a_pin_to_the_newest_release_then_to_its_rebuild(
    bot, remote: Remote, forge: ForgeServer, hub: Hub, pin_options
) -> None:
    old = hub.digests["3.11.4-slim"]
    remote.commit({"Dockerfile": f"FROM python:3.11.4-slim@{old}\nRUN echo hi\n",
                   "services/api/Dockerfile": "FROM python:3.11-slim\nRUN echo api\n"}, "Pinned")  # fmt: skip
    nothing = bot(pin_options=pin_options(**{"update-pins": True}))
    assert nothing.code == 0, nothing.err
    assert "Nothing to fix" in nothing.out and remote.sha(BRANCH) is None

    newer = hub.push("3.11.5-slim", "3.11.5-slim", "3.11-slim")
    result = bot(pin_options=pin_options(**{"update-pins": True}))
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.5-slim@{newer}\nRUN echo hi\n"
    assert remote.show(BRANCH, "services/api/Dockerfile") == "FROM python:3.11-slim\nRUN echo api\n"  # not pinned
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert _row("Dockerfile", 1, "updated", ("3.11.4-slim", old), ("3.11.5-slim", newer)) in body
    assert "| `DO410` outdated-base-pin |" in body and "| unsafe |" in body

    rebuilt = hub.push("3.11.5-slim rebuilt", "3.11.5-slim", "3.11-slim")
    assert rebuilt != newer
    result = bot(pin_options=pin_options(**{"update-pins": True}))
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.5-slim@{rebuilt}\nRUN echo hi\n"
    [pr] = forge.open_pulls(PROJECT)
    assert _row("Dockerfile", 1, "updated", ("3.11.4-slim", old), ("3.11.5-slim", rebuilt)) in pr["body"]
    assert newer not in pr["body"]

    again = bot(pin_options=pin_options(**{"update-pins": True}))
    assert again.code == 0 and "Already up to date" in again.out
    assert [r.method for r in forge.writes()] == ["POST", "PATCH"]


def test_rebuilt_tag_of_a_merged_pin_gets_a_new_digest(bot, remote: Remote, forge: ForgeServer, hub: Hub,
                                                       pin_options) -> None:  # fmt: skip
    old = hub.digests["3.11.4-slim"]
    remote.commit({"Dockerfile": f"FROM python:3.11.4-slim@{old}\nRUN echo hi\n",
                   "services/api/Dockerfile": f"FROM python:3.11.4-slim@{old}\nRUN echo api\n"}, "Pinned")  # fmt: skip
    rebuilt = hub.push("3.11.4-slim rebuilt", "3.11.4-slim", "3.11-slim")
    result = bot(provider="gitlab", pin_options=pin_options(pin="both", **{"update-pins": True}))
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.4-slim@{rebuilt}\nRUN echo hi\n"
    [mr] = forge.open_mrs(PROJECT)
    assert _row("Dockerfile", 1, "updated", ("3.11.4-slim", old), ("3.11.4-slim", rebuilt)) in mr["description"]


def test_failed_look_ups_change_nothing_and_are_reported(bot, remote: Remote, forge: ForgeServer, hub: Hub,
                                                         pin_options) -> None:  # fmt: skip
    remote.commit({"Dockerfile": "FROM python:9.9-slim\nRUN echo hi\n",
                   "services/api/Dockerfile": "FROM python:3.11-slim\nRUN echo api\n"}, "One unknown tag")  # fmt: skip
    result = bot(pin_options=pin_options(pin="both"))
    assert result.code == 0, result.err
    assert "registry look-up failed: python:9.9-slim (Dockerfile)" in result.out
    assert remote.show(BRANCH, "Dockerfile") == "FROM python:9.9-slim\nRUN echo hi\n"
    assert remote.show(BRANCH, "services/api/Dockerfile").startswith("FROM python:3.11.4-slim@")
    body = forge.open_pulls(PROJECT)[0]["body"]
    assert "Registry look-ups that failed (nothing was changed for these images" in body
    [failure] = [line for line in body.splitlines() if line.startswith("- `python:9.9-slim`")]
    assert "(in `Dockerfile`)" in failure and "not found" in failure


def test_unreachable_registry_is_reported_not_fatal(bot, remote: Remote, forge: ForgeServer, pin_options) -> None:
    remote.commit(CLEAN, "Python services")
    dead = {"docker.io": [f"http://127.0.0.1:{free_port()}"]}
    result = bot(pin_options=pin_options(pin="both", **{"registry-mirrors": dead}))
    assert result.code == 0, result.err
    assert "Nothing to fix in 2 Dockerfiles" in result.out
    assert "registry look-up failed: python:3.11-slim (Dockerfile, services/api/Dockerfile)" in result.out
    assert remote.sha(BRANCH) is None and forge.writes() == []


def test_repository_configuration_asks_for_pins(bot, remote: Remote, forge: ForgeServer, hub: Hub) -> None:
    config = (
        '[rules]\npin = "both"\nregistry-mirror-fallback = false\n'
        f'registry-mirrors = {{ "docker.io" = ["http://{hub.registry.host}"] }}\n'
    )
    remote.commit({**CLEAN, "dopt.toml": config}, "Pin base images")
    result = bot()
    assert result.code == 0, result.err
    assert remote.show(BRANCH, "Dockerfile") == f"FROM python:3.11.4-slim@{hub.digests['3.11-slim']}\nRUN echo hi\n"


def test_invalid_pin_option_is_an_error(bot, remote: Remote, forge: ForgeServer) -> None:
    result = bot(pin_options={"pin": "sometimes"})
    assert result.code == 2
    assert "'pin' must be one of tag, digest, both" in result.err
    assert forge.state.log == []


def test_command_line_switches(remote: Remote, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from dopt.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    remote.commit(CLEAN, "Python services")
    code = main(["bot", str(remote.path), "--dry-run", "--pin", "both", "--pin-specificity", "minor",
                 "--registry-mirror", f"docker.io=http://{hub.registry.host}"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert _row("Dockerfile", 1, "pinned", ("3.11-slim", None), ("3.11-slim", hub.digests["3.11-slim"])) in out


def test_registry_outage_does_not_undo_the_pins_of_the_open_pull_request(
    bot, remote: Remote, forge: ForgeServer, hub: Hub, pin_options
) -> None:
    remote.commit(CLEAN, "Python services")
    assert bot(pin_options=pin_options(pin="both")).code == 0
    pinned = remote.sha(BRANCH)
    remote.commit({"Dockerfile": "FROM python:3.11-slim\nrun echo changed\n"}, "Upstream change")
    dead = {"docker.io": [f"http://127.0.0.1:{free_port()}"]}

    result = bot(pin_options=pin_options(pin="both", **{"registry-mirrors": dead}))
    assert result.code == 0, result.err
    assert "the registry look-ups for python:3.11-slim failed" in result.out
    assert remote.sha(BRANCH) == pinned
    assert [r.method for r in forge.writes()] == ["POST"]

    answered = bot(pin_options=pin_options(pin="both"))
    assert answered.code == 0, answered.err
    assert remote.show(BRANCH, "Dockerfile").startswith(f"FROM python:3.11.4-slim@{hub.digests['3.11-slim']}\nRUN ")
    assert "echo changed" in remote.show(BRANCH, "Dockerfile")
