"""What looks like a secret: variable names, known token formats, and how to show one safely."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

# Name segments (split on "_") that mark a variable as holding a secret ...
_SECRET_WORDS = frozenset(
    {"TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "CREDENTIALS", "APIKEY", "PASSPHRASE"}
)
_SECRET_PAIRS = frozenset({("API", "KEY"), ("PRIVATE", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY"), ("AUTH", "KEY")})
# ... unless a segment says it only names where the secret is, or that it is public.
_NOT_SECRET_WORDS = frozenset({"FILE", "PATH", "DIR", "URL", "PUBLIC", "PUB", "ENDPOINT", "HOST", "PORT", "TYPE"})


def looks_secret(name: str) -> bool:
    """Whether a variable name says it holds a secret (``NPM_TOKEN``, ``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``)."""
    parts = re.split(r"_+|(?<=[a-z0-9])(?=[A-Z])", name)
    segments = [p.upper() for p in parts if p]
    if not segments or any(s in _NOT_SECRET_WORDS for s in segments):
        return False
    if any(s in _SECRET_WORDS for s in segments):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(segments))


def mask(value: str) -> str:
    """A secret shown without giving it away: its first characters and its length."""
    shown = value[:4] if len(value) >= 12 else value[:1]
    return f"{shown}… ({len(value)} characters)"


@dataclass(frozen=True)
class TokenMatch:
    kind: str
    start: int
    end: int
    secret: str  # the part that must not be printed


_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("an AWS access key id", re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"), 1),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 1),
    ("a GitLab token", re.compile(r"\b(glpat-[A-Za-z0-9_-]{20,})\b"), 1),
    ("an npm token", re.compile(r"\b(npm_[A-Za-z0-9]{36})\b"), 1),
    ("a Slack token", re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})\b"), 1),
    ("a private key", re.compile(r"(-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----)"), 1),
    (
        "a password in a URL",
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'\"$]+:([^\s/@'\"$]+)@[^\s'\"]+"),
        1,
    ),
    (
        "a credential in an Authorization header",
        re.compile(r"(?i)authorization:\s*(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{8,})"),
        1,
    ),
)


def find_tokens(text: str) -> list[TokenMatch]:
    """Literal credentials of known formats in ``text`` (values with ``$`` expansions are not literal)."""
    found = []
    for kind, pattern, group in _TOKEN_PATTERNS:
        for match in pattern.finditer(text):
            found.append(TokenMatch(kind, match.start(group), match.end(group), match.group(group)))
    return sorted(found, key=lambda m: m.start)


_SECRET_FILE_NAMES = frozenset(
    {".env", ".npmrc", ".pypirc", ".netrc", ".git-credentials", ".dockercfg", "id_rsa", "id_dsa", "id_ecdsa",
     "id_ed25519", "credentials", "credentials.json", "service-account.json", ".htpasswd"}
)  # fmt: skip
_SECRET_DIRS = frozenset({".ssh", ".aws", ".gnupg", ".docker", ".kube"})
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore")
_TEMPLATE = re.compile(r"\.(example|sample|template|dist|defaults)$")


def secret_path(path: str) -> str | None:
    """Why a context path looks like a secret file (``.env``, ``id_rsa``, ``*.pem``, ``.ssh/``), or None."""
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if not parts:
        return None
    name = parts[-1]
    if _TEMPLATE.search(name):
        return None
    if any(part in _SECRET_DIRS for part in parts):
        folder = next(part for part in parts if part in _SECRET_DIRS)
        return f"{folder}/ holds credentials"
    if name in _SECRET_FILE_NAMES or name.startswith(".env.") or name.startswith("id_rsa"):
        return "a credentials file"
    if name.endswith(_SECRET_SUFFIXES):
        return "a private key or certificate store"
    return None
