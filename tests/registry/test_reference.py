"""Reference parsing follows docker/distribution; tags split into version and variant."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dopt.registry.reference import (
    InvalidReferenceError,
    Specificity,
    compare_specificity,
    parse_reference,
    split_tag,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "registry"),
    [
        ("python", "docker.io", "library/python", None, None, "registry-1.docker.io"),
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None, "registry-1.docker.io"),
        ("docker.io/python", "docker.io", "library/python", None, None, "registry-1.docker.io"),
        ("index.docker.io/library/python:3", "docker.io", "library/python", "3", None, "registry-1.docker.io"),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None, "registry-1.docker.io"),
        ("localhost/app", "localhost", "app", None, None, "localhost"),
        ("localhost:5000/team/app:1", "localhost:5000", "team/app", "1", None, "localhost:5000"),
        ("my-registry:5000/app", "my-registry:5000", "app", None, None, "my-registry:5000"),
        ("ghcr.io/owner/img:v1.2.3", "ghcr.io", "owner/img", "v1.2.3", None, "ghcr.io"),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None, "[::1]:5000"),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None, None, "127.0.0.1:5000"),
        # An uppercase first component can only be a host: paths are lowercase.
        ("Registry/app", "Registry", "app", None, None, "Registry"),
        # A port-like suffix without a slash is a tag.
        ("app:5000", "docker.io", "library/app", "5000", None, "registry-1.docker.io"),
        (f"python@{DIGEST}", "docker.io", "library/python", None, DIGEST, "registry-1.docker.io"),
        (f"python:3.11@{DIGEST}", "docker.io", "library/python", "3.11", DIGEST, "registry-1.docker.io"),
        ("a__b/c.d/e---f_g", "docker.io", "a__b/c.d/e---f_g", None, None, "registry-1.docker.io"),
        ("quay.io/x/y:Tag_With.UPPER-case", "quay.io", "x/y", "Tag_With.UPPER-case", None, "quay.io"),
    ],
)
def test_parse_and_normalise(
    text: str, domain: str, path: str, tag: str | None, digest: str | None, registry: str
) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest, ref.registry) == (domain, path, tag, digest, registry)
    assert str(ref) == text  # written form survives


def test_formats_keep_or_expand_the_short_form() -> None:
    ref = parse_reference("python:3.11-slim")
    assert str(ref) == "python:3.11-slim"
    assert ref.canonical() == "docker.io/library/python:3.11-slim"
    assert ref.familiar() == "python:3.11-slim"
    assert ref.name == "docker.io/library/python"
    assert ref.repository == "library/python"
    assert ref.tag_or_default == "3.11-slim"

    pinned = ref.with_tag("3.11.4-slim").with_digest(DIGEST)
    assert str(pinned) == f"python:3.11.4-slim@{DIGEST}"
    long_form = parse_reference("docker.io/library/python:3.11")
    assert str(long_form.with_tag("3.11.4")) == "docker.io/library/python:3.11.4"
    assert long_form.familiar() == "python:3.11"
    assert parse_reference("docker.io/python").familiar() == "python"
    assert parse_reference("docker.io/my.org/app").familiar() == "docker.io/my.org/app"
    assert str(parse_reference("index.docker.io/python").with_tag("1")) == "index.docker.io/python:1"
    assert parse_reference("ghcr.io/o/i:1").familiar() == "ghcr.io/o/i:1"
    assert parse_reference("alpine").tag_or_default == "latest"


def test_equality_is_on_the_normalised_name() -> None:
    assert parse_reference("python:3") == parse_reference("docker.io/library/python:3")
    assert parse_reference("localhost/python:3") != parse_reference("python:3")
    assert hash(parse_reference("python")) == hash(parse_reference("index.docker.io/library/python"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Python", "repository name 'Python' must be lowercase"),
        ("docker.io/Library/python", "must be lowercase"),
        ("python:", "tag '' is not valid"),
        ("python:-x", "tag '-x' is not valid"),
        ("python:" + "a" * 129, "1 to 128 characters"),
        ("python@sha256:abc", "not of the form 'sha256:<64 lowercase hex digits>'"),
        ("python@md5:" + "a" * 32, "'md5' is not supported"),
        ("python@sha256:" + "A" * 64, "exactly 64 lowercase hex digits"),
        ("a" * 64, "image ID, not a repository name"),
        ("foo//bar", "repository name 'foo//bar' is not valid"),
        ("foo/-bar", "is not valid"),
        ("foo/bar.", "is not valid"),
        ("python:3 .11", "whitespace"),
        ("scratch", "reserved empty base image"),
        ("a/" * 130 + "b", "more than 255 characters"),
        ("my_registry.local/app", "'my_registry.local' is taken as a registry host"),
    ],
)
def test_invalid_references_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_reference(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"invalid image reference {text!r}")


def test_with_tag_and_digest_validate() -> None:
    ref = parse_reference("python")
    with pytest.raises(InvalidReferenceError, match=r"tag '\.bad' is not valid"):
        ref.with_tag(".bad")
    with pytest.raises(InvalidReferenceError, match="not of the form"):
        ref.with_digest("sha256:123")
    assert ref.with_tag("3").with_tag(None) == ref


_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) < 30)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_domain = st.sampled_from(["", "localhost", "localhost:5000", "ghcr.io", "registry.example.com:443", "docker.io"])


@settings(deadline=None)  # parsing is fast; a loaded CI machine must not make timing fail the test
@given(_domain, st.lists(_component, min_size=1, max_size=3), st.none() | _tag, st.booleans())
def test_written_form_round_trips(domain: str, components: list[str], tag: str | None, with_digest: bool) -> None:
    text = "/".join(([domain] if domain else []) + components)
    if tag:
        text += f":{tag}"
    if with_digest:
        text += f"@{DIGEST}"
    # Docker reads a dotted first component as a host; those cases are covered above.
    assume(domain or len(components) == 1 or "." not in components[0])
    assume(text != "scratch" and not re.fullmatch(r"[a-f0-9]{64}", text))
    ref = parse_reference(text)
    assert str(ref) == text
    assert parse_reference(ref.canonical()) == ref
    assert parse_reference(ref.familiar()) == ref


@pytest.mark.parametrize(
    ("tag", "version", "variant"),
    [
        ("3.11.4-slim-bookworm", (3, 11, 4), "slim-bookworm"),
        ("3.11-slim", (3, 11), "slim"),
        ("3", (3,), ""),
        ("12.5", (12, 5), ""),
        ("1.25.4-alpine3.19", (1, 25, 4), "alpine3.19"),
        ("v1.2", (1, 2), ""),
        ("latest", (), ""),
        ("slim", (), "slim"),
        ("bookworm", (), "bookworm"),
        ("3.13.0rc1-slim", (), "3.13.0rc1-slim"),  # pre-releases are not a release line
    ],
)
def test_split_tag(tag: str, version: tuple[int, ...], variant: str) -> None:
    parsed = split_tag(tag)
    assert (parsed.version, parsed.variant) == (version, variant)
    assert parsed.specificity == len(version)


def test_same_line_and_specificity() -> None:
    assert split_tag("3.11-slim").same_line(split_tag("3.11.4-slim"))
    assert split_tag("slim").same_line(split_tag("3.12.1-slim"))
    assert split_tag("latest").same_line(split_tag("3.19.1"))
    assert not split_tag("3.11-slim").same_line(split_tag("3.12.1-slim"))
    assert not split_tag("3.11-slim").same_line(split_tag("3.11.4-slim-bookworm"))
    assert not split_tag("1.2").same_line(split_tag("v1.2.3"))
    assert compare_specificity("3.11.4-slim", "3.11-slim") > 0
    assert compare_specificity("3-slim", "3.11") < 0
    assert compare_specificity("latest", "slim") == 0
    assert Specificity.parse("Minor") is Specificity.MINOR
    with pytest.raises(ValueError, match="major, minor, patch"):
        Specificity.parse("build")
