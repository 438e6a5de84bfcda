"""The ``dopt`` command as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

BAD_KEYWORDS = "from debian:12\nrun echo hi\n"


def dopt(*args: str, stdin: bytes | None = None, cwd: Path | None = None, user: int | None = None):
    """Run the real command in a fresh interpreter; returns (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dopt", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
        user=user,
        check=False,
    )
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return proc.returncode, out, err


def test_fix_diff_prints_a_diff_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    code, out, _ = dopt("fix", "--diff", str(target))
    assert code == 1
    assert "-from debian:12\n-run echo hi\n+FROM debian:12\n+RUN echo hi\n" in out
    assert target.read_text() == BAD_KEYWORDS
    patched = subprocess.run(["patch", "-p0", "--dry-run"], input=out.encode(), capture_output=True, cwd="/")
    assert patched.returncode == 0, patched.stdout


def test_fix_rewrites_in_place_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_bytes(b"from debian:12\r\nrun echo hi\r\n")
    target.chmod(0o640)
    code, _, err = dopt("fix", str(target))
    assert code == 0, err
    assert target.read_bytes() == b"FROM debian:12\r\nRUN echo hi\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert "Fixed 2 finding(s) in 1 file(s)" in err
    assert dopt("fix", "--diff", str(target))[0] == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "Dockerfile"], "temporary files left behind"


def test_fix_check_reports_pending_changes_without_writing(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    code, _, err = dopt("fix", "--check", str(target))
    assert code == 1 and "Would fix" in err
    assert target.read_text() == BAD_KEYWORDS


def test_stdin_mode_writes_the_fixed_file_to_stdout() -> None:
    code, out, _ = dopt("fix", "-", "--stdin-filename", "Dockerfile", stdin=BAD_KEYWORDS.encode())
    assert code == 0
    assert out == "FROM debian:12\nRUN echo hi\n"


def test_stdin_mode_echoes_unparseable_input_so_an_editor_keeps_its_buffer() -> None:
    broken = b"FROM debian:12\nRUN <<EOF\necho never closed\n"
    code, out, err = dopt("fix", "-", "--stdin-filename", "app/Dockerfile", stdin=broken)
    assert code == 2
    assert out.encode() == broken
    assert err.strip().splitlines() == [err.strip()]
    assert "app/Dockerfile:2:" in err and "unterminated heredoc" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"FROM debian\n\x00\x01\x02binary", "binary data"),
        (b"FROM debian:12\nRUN <<EOF\necho\n", ":2:5: unterminated heredoc"),
        (b'FROM debian:12\nCMD ["a", 1]\n', ":2:1: when using JSON array syntax, arrays must be comprised of strings"),
        (b"# only a comment\n", "file with no instructions"),
        (b"# escape=x\nFROM a\n", ":1:1: invalid escape token"),
    ],
)
def test_bad_input_gives_one_line_with_position_and_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    target = tmp_path / "Dockerfile"
    target.write_bytes(content)
    for command in (["check"], ["fix"], ["fix", "--diff"]):
        code, out, err = dopt(*command, str(target))
        assert code == 2, (command, err)
        assert out == ""
        assert expected in err
        assert err.startswith(f"dopt: error: {target}")
        assert target.read_bytes() == content, "a bad file must be left untouched"


def test_folder_without_dockerfile_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing here")
    code, _, err = dopt("check", str(tmp_path))
    assert code == 2 and "no Dockerfile found" in err


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    code, _, err = dopt("check", str(tmp_path / "nope"))
    assert code == 2 and "no such file" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as an unprivileged user")
def test_unreadable_file_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    from dopt.cli import main

    tmp_path = Path(tempfile.mkdtemp())
    tmp_path.chmod(0o755)  # the unprivileged user may enter the folder, not read the file

    readable = tmp_path / "ok.Dockerfile"
    readable.write_text(BAD_KEYWORDS)
    main(["check", str(readable)])  # load every module first: the unprivileged user cannot read /root
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    target.chmod(0o000)
    os.seteuid(65534)  # root reads everything; a normal user gets "permission denied"
    try:
        code = main(["check", str(target)])
    finally:
        os.seteuid(0)
    assert code == 2
    assert f"{target}: permission denied" in capsys.readouterr().err


def test_a_batch_reports_the_bad_file_and_fixes_the_others(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    good = tmp_path / "a" / "Dockerfile"
    bad = tmp_path / "b" / "Dockerfile.dev"
    good.write_text(BAD_KEYWORDS)
    bad.write_text("FROM a\nRUN <<EOF\n")
    code, _, err = dopt("fix", str(tmp_path))
    assert code == 2
    assert good.read_text() == "FROM debian:12\nRUN echo hi\n"
    assert f"{bad}:2:" in err


def test_directories_are_searched_for_every_dockerfile_name(tmp_path: Path) -> None:
    names = ["Dockerfile", "Dockerfile.prod", "api.Dockerfile", "web.dockerfile", "Containerfile"]
    for name in names:
        (tmp_path / name).write_text(BAD_KEYWORDS)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "Dockerfile").write_text(BAD_KEYWORDS)
    (tmp_path / "notes.txt").write_text(BAD_KEYWORDS)
    code, out, _ = dopt("check", "-o", "json", str(tmp_path))
    assert code == 1
    files = {Path(f["filename"]).name for f in json.loads(out)["findings"]}
    assert files == set(names)


def test_invalid_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dopt]\nselect = 5\n")
    (tmp_path / "Dockerfile").write_text(BAD_KEYWORDS)
    code, _, err = dopt("check", str(tmp_path / "Dockerfile"))
    assert code == 2
    assert "pyproject.toml: 'select' must be a list" in err


def test_config_in_pyproject_selects_rules_and_cli_overrides_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dopt]\nignore = ["DO100"]\n')
    (tmp_path / "Dockerfile").write_text(BAD_KEYWORDS + "MAINTAINER me\n")
    code, out, _ = dopt("check", str(tmp_path / "Dockerfile"))
    assert code == 1 and "DO100" not in out and "DO101" in out
    code, out, _ = dopt("check", "--select", "DO100", str(tmp_path / "Dockerfile"))
    assert code == 1 and "DO100" in out and "DO101" not in out


def test_inline_suppressions_dopt_and_hadolint(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(
        "FROM debian:12\n# dopt: ignore=DO100\nrun echo a\n# hadolint ignore=DL4000\nMAINTAINER me\nrun echo b\n"
    )
    code, out, _ = dopt("check", "--select", "DO100,DO101", str(target))
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1 and ":6:1: DO100" in lines[0]


def test_unsafe_fixes_are_opt_in_and_labelled(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text("FROM debian:12\nMAINTAINER Jane <j@example.com>\n")
    _, out, _ = dopt("check", str(target))
    assert "[unsafe fix: --unsafe-fixes]" in out
    assert dopt("fix", str(target))[0] == 0
    assert "MAINTAINER" in target.read_text()
    assert dopt("fix", "--unsafe-fixes", str(target))[0] == 0
    assert target.read_text() == 'FROM debian:12\nLABEL maintainer="Jane <j@example.com>"\n'


def test_output_formats(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    _, out, _ = dopt("check", "-o", "json", str(target))
    finding = json.loads(out)["findings"][0]
    assert finding["code"] == "DO100" and finding["location"] == {"line": 1, "column": 1}
    assert finding["fix"]["applicability"] == "safe"
    _, out, _ = dopt("check", "-o", "sarif", str(target))
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "DO100"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert sarif["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "DO100"
    _, out, _ = dopt("check", "-o", "github", str(target))
    assert out.startswith(f"::warning file={target},line=1,col=1,")
    code, _, err = dopt("check", "-o", "xml", str(target))
    assert code == 2 and "unknown output format" in err


def test_unknown_selector_and_rule_docs() -> None:
    code, _, err = dopt("check", "--select", "NOPE1", ".")
    assert code == 2 and "unknown rule selector 'NOPE1'" in err
    code, out, _ = dopt("rules")
    assert code == 0 and "DO100" in out and "keyword-case" in out
    code, out, _ = dopt("explain", "DL4000")
    assert code == 0 and out.startswith("DO101 maintainer-deprecated")
    code, _, err = dopt("explain", "XYZ")
    assert code == 2


def test_help_teaches_the_main_commands() -> None:
    code, out, _ = dopt("--help")
    assert code == 0
    for word in ("fix", "check", "rules", "explain", "dopt fix --diff"):
        assert word in out
    code, out, _ = dopt("fix", "--help")
    assert "--diff" in out and "--unsafe-fixes" in out and "--stdin-filename" in out


def test_verify_without_a_docker_engine_says_so_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    code, _, err = dopt("verify", str(target))
    assert code == 2
    assert "no Docker engine" in err
    assert len(err.strip().splitlines()) == 1


def test_a_large_batch_gives_the_same_result_as_one_file_at_a_time(tmp_path: Path) -> None:
    """Big batches run in worker processes; what they write must not depend on that."""
    texts = [
        f"from debian:12\nrun echo {i}\n" if i % 3 else f"FROM debian:12\nRUN <<EOF\nbroken {i}\n" for i in range(80)
    ]
    for i, text in enumerate(texts):
        (tmp_path / f"{i:03}.Dockerfile").write_text(text)
    code, _, err = dopt("fix", "--select", "DO100", str(tmp_path))
    assert code == 2  # the broken files are reported, the others fixed
    for i, text in enumerate(texts):
        written = (tmp_path / f"{i:03}.Dockerfile").read_text()
        if i % 3:
            assert written == f"FROM debian:12\nRUN echo {i}\n"
        else:
            assert written == text and f"{i:03}.Dockerfile:2:" in err


@pytest.mark.parametrize("command", [("fix", "--diff"), ("check",), ("rules",)])
def test_console_script_collects_cycles_again_once_started(tmp_path: Path, command: tuple[str, ...]) -> None:
    # The console script starts with the cycle collector off (start-up speed); a long run (a
    # batch, the language server) must get it back, or cyclic garbage would never be freed.
    target = tmp_path / "Dockerfile"
    target.write_text(BAD_KEYWORDS)
    paths = [str(target)] if command != ("rules",) else []
    probe = "import gc, sys\nfrom dopt.__main__ import main\nmain()\nprint('collector on' if gc.isenabled() else 'off')"
    done = subprocess.run([sys.executable, "-c", probe, *command, *paths], capture_output=True, text=True)
    assert done.stdout.rstrip().endswith("collector on"), done.stderr
