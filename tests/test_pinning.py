"""The pinning edge (settings, mirrors, look-up planning, results) and the DO4xx rules, without a network.

The registry is replaced by an in-memory stand-in with the client's interface; the real client
against real registries is exercised in ``tests/registry/test_pinning_end_to_end.py``.
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path

import pytest

from dopt.optimizer.api import check_source, fix_source
from dopt.optimizer.config import Settings
from dopt.registry import DiskCache, ManifestDescriptor, parse_reference
from dopt.registry.errors import (
    ManifestNotFoundError,
    NotInCacheError,
    RegistryError,
    RegistryUnreachableError,
    RepositoryNotFoundError,
)
from dopt.registry.pinning import (
    RESOLUTIONS,
    STALE,
    UPDATES,
    Mirror,
    PinLookups,
    daemon_registry_mirrors,
    image_references,
    parse_mirrors,
    pinning_requested,
    policy_from_options,
    registry_options,
    registry_options_for_files,
    resolve_for_documents,
    update_line,
)
from dopt.registry.reference import InvalidReferenceError, Specificity
from dopt.registry.resolve import PinMode, PinPolicy, Resolution
from dopt.transforms._images import data
from dopt.transforms.base_deprecated import notices_for
from dopt.transforms.base_runtime import runtime_reference
from dopt.transforms.base_slim import slim_tag
from dopt.transforms.base_trust import is_trusted, trusted_sources

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest(name: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


PYTHON = {
    **dict.fromkeys(["latest", "3", "3.12", "3.12.1"], digest("py-3.12.1")),
    **dict.fromkeys(["slim", "3-slim", "3.12-slim", "3.12.1-slim"], digest("py-3.12.1-slim")),
    "3.12.0": digest("py-3.12.0"),
    **dict.fromkeys(["3.11-slim", "3.11.9-slim"], digest("py-3.11.9-slim")),
    "3.11.4-slim": digest("py-3.11.4-slim"),
}
ALPINE = dict.fromkeys(["latest", "3", "3.19", "3.19.1"], digest("alpine-index"))


class FakeClient:
    """The part of RegistryClient that resolve() uses, over an in-memory set of registries."""

    def __init__(self, registries: dict[str, dict[str, dict[str, str]]], *, offline: bool = False, cache=None):
        self.registries = registries
        self.offline = offline
        self.cache = cache if cache is not None else DiskCache(Path("/nonexistent/dopt-test-cache"))
        self.max_workers = 4
        self.heads: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def _repository(self, ref) -> dict[str, str]:
        if self.offline:
            raise NotInCacheError(f"offline mode: {ref.registry}/{ref.repository} is not in the cache")
        if ref.registry not in self.registries:
            raise RegistryUnreachableError(f"cannot reach registry {ref.registry}", registry=ref.registry)
        repo = self.registries[ref.registry].get(ref.repository)
        if repo is None:
            raise RepositoryNotFoundError(f"repository {ref.repository} not found on {ref.registry}")
        return repo

    def head_manifest(self, ref) -> ManifestDescriptor:
        with self._lock:
            self.heads.append((ref.registry, ref.repository, ref.tag_or_default))
        repo = self._repository(ref)
        tag = ref.tag_or_default
        if tag not in repo:
            raise ManifestNotFoundError(f"tag {tag!r} not found in {ref.registry}/{ref.repository}")
        return ManifestDescriptor(repo[tag], INDEX if "alpine" in ref.repository else MANIFEST)

    def list_tags(self, ref) -> list[str]:
        return list(self._repository(ref))

    def digests(self, ref, tags) -> dict[str, ManifestDescriptor]:
        repo = self._repository(ref)
        return {tag: ManifestDescriptor(repo[tag], MANIFEST) for tag in tags if tag in repo}


HUB = "registry-1.docker.io"
MIRROR = "mirror.example.com"


def hub_client(**kwargs: object) -> FakeClient:
    return FakeClient({HUB: {"library/python": PYTHON, "library/alpine": ALPINE}}, **kwargs)  # type: ignore[arg-type]


# --- settings --------------------------------------------------------------------------------------


def test_policy_from_options() -> None:
    assert policy_from_options({}) == PinPolicy(PinMode.BOTH, Specificity.PATCH)
    assert policy_from_options({"pin": "Tag", "pin-specificity": "MINOR"}) == PinPolicy(PinMode.TAG, Specificity.MINOR)
    with pytest.raises(ValueError, match="'pin' must be one of tag, digest, both; got 'sha'"):
        policy_from_options({"pin": "sha"})
    with pytest.raises(ValueError, match="'pin-specificity' must be one of major, minor, patch"):
        policy_from_options({"pin-specificity": "build"})


def test_pinning_is_requested_only_explicitly() -> None:
    assert not pinning_requested({})
    assert not pinning_requested({"pin-specificity": "patch", "registry-offline": True})
    assert pinning_requested({"pin": "tag"})
    assert pinning_requested({"update-pins": True})
    assert registry_options(["FROM python:latest\n"], {"pin-specificity": "minor"}) == {}


def test_update_line() -> None:
    def line(text: str) -> str | None:
        found = update_line(parse_reference(text))
        return None if found is None else str(found)

    assert line(f"python:3.11.4-slim@{digest('x')}") == "python:3.11-slim"
    assert line("debian:12.5") == "debian:12"
    assert line("ghcr.io/org/app:v1.2.3") == "ghcr.io/org/app:v1.2"
    assert line("python:3-slim") is None
    assert line("debian:bookworm") is None
    assert line("alpine") is None


def test_parse_mirrors() -> None:
    assert parse_mirrors(None) == {}
    assert parse_mirrors(["https://mirror.gcr.io"]) == {"docker.io": (Mirror("mirror.gcr.io"),)}
    assert parse_mirrors({"index.docker.io": ["http://10.0.0.5:5000", "cache.local:443"]}) == {
        "docker.io": (Mirror("10.0.0.5:5000", plain_http=True), Mirror("cache.local:443"))
    }
    assert parse_mirrors({"ghcr.io": "https://ghcr-cache.example.com/"}) == {
        "ghcr.io": (Mirror("ghcr-cache.example.com"),)
    }
    with pytest.raises(ValueError, match="no path"):
        parse_mirrors({"docker.io": "https://example.com/v2/hub"})
    with pytest.raises(ValueError, match="scheme must be http or https"):
        parse_mirrors(["ftp://example.com"])


def test_daemon_registry_mirrors(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    assert daemon_registry_mirrors(config) == ()
    config.write_text(json.dumps({"registry-mirrors": ["https://mirror.gcr.io"], "insecure-registries": []}))
    assert daemon_registry_mirrors(config) == ("https://mirror.gcr.io",)
    config.write_text("{not json")
    assert daemon_registry_mirrors(config) == ()


def test_image_references_follow_arg_defaults_and_skip_stages() -> None:
    text = (
        "ARG BASE=python:latest\nARG TAG=3.19\nARG NONE\n"
        "FROM ${BASE} AS one\nFROM alpine:${TAG}\nFROM one\nFROM scratch\nFROM ${NONE}\n"
        "FROM Not_Valid\nFROM ghcr.io/org/app@" + digest("app") + "\n"
    )
    assert [str(ref) for ref in image_references(text)] == [
        "python:latest",
        "alpine:3.19",
        f"ghcr.io/org/app@{digest('app')}",
    ]
    assert image_references("FROM\n") == []  # a syntax error: nothing to look up


# --- results -------------------------------------------------------------------------------------


def test_lookups_round_trip_through_json() -> None:
    lookups = resolve_for_documents(
        ["FROM python:latest\nFROM nope\n"], client=hub_client(), registry_mirrors={}, update=True
    )
    data_ = json.loads(json.dumps(lookups.to_json()))
    again = PinLookups.from_json(data_)
    assert again.to_json() == lookups.to_json()
    assert isinstance(again.resolutions["nope"], RepositoryNotFoundError)
    back = PinLookups.from_json({"resolutions": {"x:1": {"error": "NoSuchClass", "message": "m"}}})
    assert type(back.resolutions["x:1"]) is RegistryError
    bad = PinLookups.from_json({"resolutions": {"x:1": {"error": "InvalidReferenceError", "message": "m"}}})
    assert isinstance(bad.resolutions["x:1"], InvalidReferenceError)


# --- look-ups ------------------------------------------------------------------------------------


def test_each_reference_once_with_updates() -> None:
    client = hub_client()
    old = digest("py-3.11.4-slim-old")
    lookups = resolve_for_documents(
        [
            "FROM python:latest\nFROM alpine\n",
            f"FROM python:latest\nFROM python:3.11.4-slim@{old}\nFROM python@{digest('x')}\n",
        ],
        client=client,
        registry_mirrors={},
        update=True,
    )
    assert set(lookups.resolutions) == {"python:latest", "alpine", f"python:3.11.4-slim@{old}"}
    assert client.heads.count((HUB, "library/python", "latest")) == 1
    line = lookups.updates[f"python:3.11.4-slim@{old}"]
    assert isinstance(line, Resolution) and line.text == f"python:3.11.9-slim@{digest('py-3.11.9-slim')}"
    assert set(lookups.updates) == {f"python:3.11.4-slim@{old}"}  # latest and alpine have no release line
    options = lookups.options()
    assert set(options) == {RESOLUTIONS, UPDATES, STALE}


def test_mirror_first_then_the_registry() -> None:
    client = FakeClient({MIRROR: {"library/python": PYTHON}, HUB: {"library/python": PYTHON}})
    lookups = resolve_for_documents(
        ["FROM python:latest\n"], client=client, registry_mirrors={"docker.io": [f"https://{MIRROR}"]}
    )
    found = lookups.resolutions["python:latest"]
    assert isinstance(found, Resolution)
    assert found.text == f"python:3.12.1@{digest('py-3.12.1')}"  # the user's short form, not the mirror's
    assert str(found.original) == "python:latest"
    assert found.explanation.startswith("python:latest points to")
    assert found.explanation.endswith(f"(looked up at the registry mirror {MIRROR})")
    assert {registry for registry, _, _ in client.heads} == {MIRROR}

    broken = FakeClient({HUB: {"library/python": PYTHON}})  # the mirror is unreachable
    fallen_back = resolve_for_documents(
        ["FROM python:latest\n"], client=broken, registry_mirrors={"docker.io": [f"https://{MIRROR}"]}
    ).resolutions["python:latest"]
    assert isinstance(fallen_back, Resolution) and "mirror" not in fallen_back.explanation

    nowhere = resolve_for_documents(
        ["FROM python:latest\n"],
        client=FakeClient({}),
        registry_mirrors={"docker.io": [f"https://{MIRROR}"]},
    ).resolutions["python:latest"]
    assert isinstance(nowhere, RegistryUnreachableError)
    assert str(nowhere) == (
        f"registry mirror {MIRROR}: cannot reach registry {MIRROR}; then {HUB}: cannot reach registry {HUB}"
    )

    no_fallback = resolve_for_documents(
        ["FROM python:latest\n"],
        client=FakeClient({HUB: {"library/python": PYTHON}}),
        registry_mirrors={"docker.io": [f"https://{MIRROR}"]},
        mirror_fallback=False,
    ).resolutions["python:latest"]
    assert isinstance(no_fallback, RegistryUnreachableError) and MIRROR in str(no_fallback)


def test_offline_answers_older_than_the_ttl_are_marked_stale(tmp_path: Path) -> None:
    old_writer = DiskCache(tmp_path, clock=lambda: 0.0)
    old_writer.put(f"head\n{HUB}\nlibrary/python\nlatest", {"digest": digest("py-3.12.1"), "media_type": MANIFEST})
    fresh_writer = DiskCache(tmp_path)
    fresh_writer.put(f"head\n{HUB}\nlibrary/alpine\nlatest", {"digest": digest("alpine-index"), "media_type": INDEX})

    class CachedClient(FakeClient):
        def _repository(self, ref):  # answers as the cache would, while offline
            return self.registries[HUB][ref.repository]

    client = CachedClient(
        {HUB: {"library/python": PYTHON, "library/alpine": ALPINE}}, offline=True, cache=DiskCache(tmp_path)
    )
    lookups = resolve_for_documents(["FROM python:latest\nFROM alpine\n"], client=client, registry_mirrors={})
    assert lookups.stale == {"python:latest"}


def test_registry_options_reads_the_settings() -> None:
    client = hub_client()
    options = registry_options(
        ["FROM python:3.12-slim\n"], {"pin": "tag", "pin-specificity": "minor", "registry-mirrors": {}}, client=client
    )
    found = options[RESOLUTIONS]["python:3.12-slim"]
    assert isinstance(found, Resolution) and found.text == "python:3.12-slim"
    with pytest.raises(ValueError, match="'pin' must be one of"):
        registry_options(["FROM python\n"], {"pin": "yes"}, client=client)
    with pytest.raises(ValueError, match="registry-mirrors"):
        registry_options(["FROM python\n"], {"pin": "both", "registry-mirrors": 5}, client=client)


def test_registry_options_for_files_groups_by_settings() -> None:
    client = hub_client()
    both = {"pin": "both", "registry-mirrors": {}}
    tag = {"pin": "tag", "registry-mirrors": {}}
    found = registry_options_for_files(
        [
            ("a", "FROM python:latest\n", both),
            ("b", "FROM alpine\n", both),
            ("c", "FROM python:latest\n", tag),
            ("d", "FROM python:latest\n", {}),
        ],
        client=client,
    )
    assert set(found) == {"a", "b", "c"}
    assert found["a"] is found["b"] and set(found["a"][RESOLUTIONS]) == {"python:latest", "alpine"}
    assert found["c"][RESOLUTIONS]["python:latest"].text == "python:3.12.1"


# --- the rules through the library API ------------------------------------------------------------


def _settings(options: dict[str, object], *codes: str) -> Settings:
    return Settings(select=codes or ("DO4",), rule_options=options)


def test_api_wiring_pins_with_resolutions_in_the_options() -> None:
    text = "FROM python:latest\nRUN true\n"
    settings = _settings({"pin": "both"}, "DO400")
    lookups = resolve_for_documents([text], client=hub_client(), registry_mirrors={})
    result = fix_source(text, settings=settings.merged(rule_options=lookups.options()))
    assert result.output == f"FROM python:3.12.1@{digest('py-3.12.1')}\nRUN true\n"
    assert result.fixed[0].fix is not None and result.fixed[0].fix.description.startswith("pin python:latest to")
    # The same settings without look-ups: the finding stays, nothing is guessed.
    plain = fix_source(text, settings=settings)
    assert plain.output == text and plain.remaining[0].code == "DO400"


def test_no_guess_after_a_failed_look_up() -> None:
    text = "FROM python:latest\n"
    lookups = resolve_for_documents([text], client=hub_client(offline=True), registry_mirrors={})
    assert isinstance(lookups.resolutions["python:latest"], NotInCacheError)
    result = fix_source(text, settings=_settings({"pin": "both", **lookups.options()}, "DO400"))
    assert result.output == text
    assert "offline mode" in result.remaining[0].message


def test_fix_is_stable_across_rounds() -> None:
    text = "FROM python:3-slim AS a\nFROM alpine\nFROM python:3.11.4-slim\n"
    lookups = resolve_for_documents([text], client=hub_client(), registry_mirrors={}, update=True)
    settings = _settings({"pin": "both", **lookups.options()}, "DO400", "DO401", "DO410")
    result = fix_source(text, settings=settings, unsafe_fixes=True)
    assert result.output == (
        f"FROM python:3.12.1-slim@{digest('py-3.12.1-slim')} AS a\n"
        f"FROM alpine:3.19.1@{digest('alpine-index')}\n"
        f"FROM python:3.11.9-slim@{digest('py-3.11.9-slim')}\n"
    )
    assert fix_source(result.output, settings=settings, unsafe_fixes=True).output == result.output


def test_do401_is_quiet_without_a_policy() -> None:
    text = "FROM python:3.12-slim\nFROM ${BASE}\n"
    assert check_source(text, settings=_settings({}, "DO401")).remaining == []
    found = check_source(text, settings=_settings({"pin": "digest"}, "DO401")).remaining
    assert [f.line for f in found] == [1, 2]


def test_arg_default_is_only_rewritten_when_only_from_lines_use_it() -> None:
    lookups = resolve_for_documents(["FROM python:latest\n"], client=hub_client(), registry_mirrors={})
    settings = _settings({"pin": "both", **lookups.options()}, "DO400")
    pinned = f"python:3.12.1@{digest('py-3.12.1')}"
    fine = "ARG BASE=python:latest\nFROM ${BASE}\nFROM $BASE AS two\n"
    assert fix_source(fine, settings=settings).output == f"ARG BASE={pinned}\nFROM ${{BASE}}\nFROM $BASE AS two\n"
    for text in (
        "ARG BASE=python:latest\nFROM ${BASE}\nARG BASE\nRUN echo $BASE\n",  # a stage sees it
        "ARG BASE=python:latest\nARG OTHER=${BASE}\nFROM ${BASE}\n",  # another default embeds it
        'ARG BASE="python:latest"\nFROM ${BASE}\n',  # quoted: not rewritten
    ):
        result = fix_source(text, settings=settings)
        assert result.output == text, text
        assert result.remaining and "pin their defaults by hand" in result.remaining[0].message


# --- data and helpers ------------------------------------------------------------------------------


def test_data_file_is_consistent() -> None:
    info = data()
    for name, entry in info["images"].items():
        assert entry.get("successor") or entry.get("advice"), name
        if isinstance(entry.get("eol"), str):
            datetime.date.fromisoformat(entry["eol"])
        for version, day in entry.get("eol", {}).items() if isinstance(entry.get("eol"), dict) else ():
            assert all(part.isdigit() for part in version.split(".")), (name, version)
            datetime.date.fromisoformat(str(day))
    for name, codename in info["codenames"].items():
        datetime.date.fromisoformat(codename["eol"])
        assert codename["successor"] not in info["codenames"], name  # successors are supported releases
    for name, entry in info["slim"]["images"].items():
        assert entry["style"] in ("slim-before-codename", "slim-after-codename"), name


@pytest.mark.parametrize(
    ("reference", "day", "successor"),
    [
        ("python:3.7-slim-buster", "2026-01-01", "python:3.13-slim-bookworm"),
        ("python:3.9", "2025-10-31", "python:3.13"),
        ("node:18-alpine3.16", "2026-01-01", "node:24-alpine3.22"),
        ("debian:buster-slim", "2026-01-01", "debian:bookworm-slim"),
        ("ubuntu:20.04", "2026-01-01", "ubuntu:24.04"),
    ],
)
def test_end_of_life_successors(reference: str, day: str, successor: str) -> None:
    notices, found, _ = notices_for(parse_reference(reference), datetime.date.fromisoformat(day))
    assert notices and found == successor


def test_not_yet_end_of_life() -> None:
    for reference in ("python:3.9", "python:3.12", "python", "node:22", "debian:bookworm", "alpine:3.22"):
        notices, _, _ = notices_for(parse_reference(reference), datetime.date(2025, 10, 30))
        assert notices == [], reference


@pytest.mark.parametrize(
    ("tag", "style", "expected"),
    [
        ("3.12", "slim-before-codename", "3.12-slim"),
        ("3.12.1-bookworm", "slim-before-codename", "3.12.1-slim-bookworm"),
        ("bookworm", "slim-before-codename", "slim-bookworm"),
        ("20-bookworm", "slim-after-codename", "20-bookworm-slim"),
        ("bookworm", "slim-after-codename", "bookworm-slim"),
        ("12.5", "slim-after-codename", "12.5-slim"),
        ("3.12-alpine", "slim-before-codename", None),
        ("3.12-slim", "slim-before-codename", None),
        ("3.12-windowsservercore", "slim-before-codename", None),
    ],
)
def test_slim_tag(tag: str, style: str, expected: str | None) -> None:
    assert slim_tag(tag, style, "slim") == expected


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("eclipse-temurin:21", "eclipse-temurin:21-jre"),
        ("eclipse-temurin:21-jdk-alpine", "eclipse-temurin:21-jre-alpine"),
        ("eclipse-temurin:21-noble", "eclipse-temurin:21-jre-noble"),
        ("eclipse-temurin:latest", None),
        ("mcr.microsoft.com/dotnet/sdk:8.0-alpine", "mcr.microsoft.com/dotnet/aspnet:8.0-alpine"),
        ("mcr.microsoft.com/dotnet/sdk:8.0.100", None),
        ("golang:1.22", None),
    ],
)
def test_runtime_reference(reference: str, expected: str | None) -> None:
    ref = parse_reference(reference)
    entry = data()["runtime"][ref.name.removeprefix("docker.io/library/")]
    found = runtime_reference(ref, entry)
    assert (None if found is None else str(found)) == expected


def test_trusted_sources() -> None:
    sources = trusted_sources({"trusted-registries": ["ghcr.io/myorg", "Registry.Example.com", "bitnami", "docker.io"]})
    assert is_trusted(parse_reference("python:3"), trusted_sources({}))
    assert not is_trusted(parse_reference("bitnami/redis:7"), trusted_sources({}))
    assert is_trusted(parse_reference("ghcr.io/myorg/a/b:1"), sources)
    assert not is_trusted(parse_reference("ghcr.io/myorgx/a:1"), sources)
    assert is_trusted(parse_reference("registry.example.com/x:1"), sources)
    assert is_trusted(parse_reference("someone/anything:1"), sources)  # all of Docker Hub trusted
    single = trusted_sources({"trusted-registries": "quay.io"})
    assert is_trusted(parse_reference("quay.io/x/y:1"), single)


@pytest.mark.parametrize(("code", "options"), [("DO400", {}), ("DO401", {"pin": "digest"})])
def test_from_lines_sharing_an_arg_default_get_one_finding_at_the_default(code: str, options: dict) -> None:
    text = "ARG BASE=python:latest\nFROM ${BASE} AS build\nRUN true\nFROM ${BASE}\nRUN true\n"
    if code == "DO401":
        text = text.replace("python:latest", "python:3")
    found = [f for f in check_source(text, settings=_settings(options, code)).remaining if f.code == code]
    assert [(f.line, f.column) for f in found] == [(1, 10)]  # the default a fix would edit, once
