"""The pre-commit hooks, run by the real ``pre-commit`` tool the way a user's project would run them.

``pre-commit try-repo`` installs dopt from a git repository into its own virtualenv (from PyPI-
reachable dependencies) and runs a hook on a project. The hook repository is a git repository
made from the current working tree (the package, pyproject.toml, README.md and
.pre-commit-hooks.yaml), so the test checks what is on disk, committed or not. try-repo builds
a fresh virtualenv for every call (its store is temporary), so each call takes some seconds.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
BAD = "from debian:12\nrun echo hi\n"


def _pre_commit() -> list[str]:
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        pytest.fail("pre-commit is missing: install it with `pip install pre-commit`", pytrace=False)
    return [sys.executable, "-m", "pre_commit"]


def _pypi_reachable() -> bool:
    index = urlsplit(os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple")
    try:
        with socket.create_connection((index.hostname or "pypi.org", index.port or 443), timeout=5):
            return True
    except OSError:
        return False


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PRE_COMMIT_HOME=str(home),
        GIT_AUTHOR_NAME="Test Runner",
        GIT_AUTHOR_EMAIL="runner@example.com",
        GIT_COMMITTER_NAME="Test Runner",
        GIT_COMMITTER_EMAIL="runner@example.com",
        PRE_COMMIT_COLOR="never",
    )
    return env


def _git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_hooks_file_is_a_valid_manifest() -> None:
    done = subprocess.run([*_pre_commit(), "validate-manifest", str(HOOKS_FILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {hook["id"]: hook for hook in yaml.safe_load(HOOKS_FILE.read_text())}
    assert set(hooks) == {"dopt-fix", "dopt-check"}
    assert hooks["dopt-fix"]["entry"] == "dopt fix" and hooks["dopt-check"]["entry"] == "dopt check"
    assert {hook["language"] for hook in hooks.values()} == {"python"}


@pytest.mark.parametrize(
    "path",
    [
        "Dockerfile",
        "Containerfile",
        "docker/Dockerfile",
        "Dockerfile.dev",
        "Dockerfile.",
        "Containerfile.arm64",
        "api.dockerfile",
        "deploy/api.Dockerfile",
        "web.containerfile",
        "x.DOCKERFILE",
        ".dockerfile",
        "Dockerfile.d/readme.md",
        "README.md",
        "dockerfile",
        "NotADockerfile",
        "docs/Dockerfile-guide.md",
        "Dockerfiles/setup.py",
    ],
)
def test_files_pattern_matches_the_names_dopt_looks_for(path: str) -> None:
    from dopt.cli import is_dockerfile_name

    for hook in yaml.safe_load(HOOKS_FILE.read_text()):
        matched = re.search(hook["files"], path) is not None
        assert matched == is_dockerfile_name(path.rsplit("/", 1)[-1]), (hook["id"], path)


def _sources() -> dict[str, bytes]:
    files = {}
    for path in sorted((ROOT / "dopt").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for name in ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml"):
        if (ROOT / name).is_file():
            files[name] = (ROOT / name).read_bytes()
    return files


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding the working tree's package and hooks file, committed."""
    repo = tmp_path_factory.mktemp("dopt-hooks")
    for name, data in _sources().items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    env = _env(tmp_path_factory.mktemp("pre-commit-home"))
    _git("init", "--quiet", "-b", "main", cwd=repo, env=env)
    _git("add", "--all", cwd=repo, env=env)
    _git("commit", "--quiet", "-m", "dopt", cwd=repo, env=env)
    return repo


def test_hooks_check_then_fix_a_bad_dockerfile(hook_repo: Path, tmp_path: Path) -> None:
    command = _pre_commit()
    if not _pypi_reachable():
        pytest.skip("pre-commit installs the hook's dependencies from PyPI, which is not reachable")
    env = _env(tmp_path / "pre-commit-home")
    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    (project / "docker" / "Dockerfile").write_text(BAD)
    (project / "notes.txt").write_text("from is not a Dockerfile here\n")
    # The hooks read the project's configuration; DO100 alone keeps the final "Passed" independent
    # of rules added later that report on this file.
    (project / "dopt.toml").write_text('select = ["DO100"]\n')
    _git("init", "--quiet", "-b", "main", cwd=project, env=env)
    _git("add", "--all", cwd=project, env=env)

    def hook(hook_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "try-repo", str(hook_repo), hook_id, "--all-files", "--verbose"],
            cwd=project, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    check = hook("dopt-check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "dopt check" in check.stdout and "Failed" in check.stdout
    assert "docker/Dockerfile:1:1: DO100" in check.stdout
    assert (project / "docker" / "Dockerfile").read_text() == BAD  # check changes nothing

    fix = hook("dopt-fix")
    assert fix.returncode == 1, fix.stdout + fix.stderr  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in fix.stdout
    fixed = (project / "docker" / "Dockerfile").read_text()
    assert fixed.startswith("FROM debian:12\nRUN echo hi\n")
    assert (project / "notes.txt").read_text() == "from is not a Dockerfile here\n"

    _git("add", "--all", cwd=project, env=env)
    again = hook("dopt-check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Passed" in again.stdout
