"""The tag-choice logic, on tag -> digest mappings, without any registry."""

from __future__ import annotations

import pytest

from dopt.registry.reference import Specificity, parse_reference
from dopt.registry.resolve import PinMode, candidate_tags, choose_tag, pin_reference

A, B, C = ("sha256:" + c * 64 for c in "abc")

PYTHON = {
    "3.11.4-slim": A,
    "3.11-slim": A,
    "3.11.4-slim-bookworm": A,
    "3.11.3-slim": B,
    "3.11.10-slim": C,  # numerically newer than 3.11.4: order is numeric, not lexical
    "3.12.1-slim": C,
    "3-slim": C,
    "slim": C,
    "3.13.0rc1-slim": C,
    "3.11.4": A,
}


def test_candidates_same_variant_extending_version_most_specific_first() -> None:
    assert candidate_tags("3.11-slim", PYTHON, Specificity.PATCH) == ["3.11.10-slim", "3.11.4-slim", "3.11.3-slim"]
    assert candidate_tags("slim", PYTHON, Specificity.MINOR) == ["3.11-slim", "3-slim"]
    assert candidate_tags("slim", PYTHON, Specificity.PATCH)[:2] == ["3.12.1-slim", "3.11.10-slim"]
    assert candidate_tags("latest", PYTHON, Specificity.PATCH) == ["3.11.4"]
    # Already as specific as the policy allows: nothing to gain.
    assert candidate_tags("3.11.4-slim", PYTHON, Specificity.PATCH) == []
    assert candidate_tags("3.11-slim", PYTHON, Specificity.MINOR) == []


def test_choose_most_specific_tag_sharing_the_digest() -> None:
    choice = choose_tag("3.11-slim", A, PYTHON, Specificity.PATCH)
    assert choice.tag == "3.11.4-slim"
    assert choice.sharing == ("3.11.4", "3.11.4-slim", "3.11.4-slim-bookworm", "3.11-slim")
    assert choose_tag("3-slim", C, PYTHON, Specificity.PATCH).tag == "3.12.1-slim"
    assert choose_tag("3-slim", C, PYTHON, Specificity.MAJOR).tag == "3-slim"
    # A pre-release sharing the digest is never chosen.
    assert "3.13.0rc1-slim" not in candidate_tags("slim", PYTHON, Specificity.PATCH)


def test_choose_keeps_the_floating_tag_without_a_match() -> None:
    choice = choose_tag("3.11-slim", "sha256:" + "f" * 64, {"3.11.4-slim": A}, Specificity.PATCH)
    assert choice.tag == "3.11-slim"
    assert choice.sharing == ("3.11-slim",)


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("python:3.11-slim", PinMode.TAG, "python:3.11.4-slim"),
        ("python:3.11-slim", PinMode.DIGEST, f"python:3.11-slim@{A}"),
        ("python:3.11-slim", PinMode.BOTH, f"python:3.11.4-slim@{A}"),
        ("python", PinMode.DIGEST, f"python:latest@{A}"),
        # An existing digest pin is refreshed, never dropped.
        (f"python:3.11-slim@{B}", PinMode.TAG, f"python:3.11.4-slim@{A}"),
        ("docker.io/library/python:3.11-slim", PinMode.BOTH, f"docker.io/library/python:3.11.4-slim@{A}"),
    ],
)
def test_pin_reference(text: str, mode: PinMode, expected: str) -> None:
    assert str(pin_reference(parse_reference(text), "3.11.4-slim", A, mode)) == expected
