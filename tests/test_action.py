"""The GitHub Action and the GitLab CI template: their files are valid, and their dopt steps work.

The steps that need GitHub or GitLab (setting up Python, uploading SARIF) cannot run here; the
dopt part can, because it is a script (``ci/action-entrypoint.sh``) or plain shell lines (the
GitLab job's ``script``), run here exactly as the runner would run them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
ENTRYPOINT = ROOT / "ci" / "action-entrypoint.sh"
GITLAB = ROOT / "ci" / "gitlab-ci.yml"
BAD = "from debian:12\nrun echo hi\n"
GOOD = "FROM debian:12\nRUN echo hi\n"
ONLY_DO100 = 'select = ["DO100"]\n'  # exact counts even when rules that report on these files are added


def _action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def _gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text())


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    """A folder for PATH with ``dopt`` and ``python`` running this checkout with this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dopt").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dopt "$@"\n')
    (bin_dir / "dopt").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir


def _env(tools: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DOPT_"))}
    env["PATH"] = f"{tools}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


def _check_jsonschema(schema: str, path: Path) -> None:
    exe = shutil.which("check-jsonschema")
    if exe is None:
        pytest.fail("check-jsonschema is missing: install it with `pip install check-jsonschema`", pytrace=False)
    done = subprocess.run([exe, "--builtin-schema", schema, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# -- action.yml -------------------------------------------------------------------------------


def test_action_metadata() -> None:
    action = _action()
    assert action["name"] and action["description"]
    assert action["runs"]["using"] == "composite"
    for name, spec in action["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec, name
    for name, spec in action["outputs"].items():
        assert spec["value"] == f"${{{{ steps.dopt.outputs.{name} }}}}"

    steps = action["runs"]["steps"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step["shell"] == "bash", step  # composite run steps must name their shell
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    install = next(step for step in steps if "pip install" in step.get("run", ""))
    assert "dockerfile-optimizer" in install["run"] and "$GITHUB_ACTION_PATH" in install["run"]
    dopt = next(step for step in steps if step.get("id") == "dopt")
    assert "ci/action-entrypoint.sh" in dopt["run"]
    upload = next(step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert "always()" in upload["if"]
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    # Every input the steps read exists.
    used = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", ACTION.read_text()))
    assert used <= set(action["inputs"])


def test_action_matches_the_github_schema() -> None:
    _check_jsonschema("vendor.github-actions", ACTION)


def test_entrypoint_annotates_writes_sarif_and_fails_on_findings(tmp_path: Path, tools: Path) -> None:
    project = _project(tmp_path, {"Dockerfile": BAD, "docker/api.Dockerfile": GOOD, "README.md": "from x\n"})
    outputs, summary = tmp_path / "github_output", tmp_path / "summary.md"
    done = subprocess.run(
        ["bash", str(ENTRYPOINT)], cwd=project, capture_output=True, text=True, timeout=120,
        env=_env(tools, GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary)),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    annotations = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert (
        "::warning file=Dockerfile,line=1,col=1,endLine=1,endColumn=15,title=DO100 keyword-case"
        "::keyword 'from' should be upper case"
    ) in annotations
    assert (
        "::warning file=Dockerfile,line=2,col=1,endLine=2,endColumn=12,title=DO100 keyword-case"
        "::keyword 'run' should be upper case"
    ) in annotations
    sarif = json.loads((project / "dopt.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert len(results) == len(annotations)
    do100 = [r for r in results if r["ruleId"] == "DO100"]
    assert len(do100) == 2
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in do100} == {"Dockerfile"}
    assert outputs.read_text().splitlines() == [
        "sarif-file=dopt.sarif",
        f"findings={len(annotations)}",
        "exit-code=1",
    ]
    assert f"dopt found {len(annotations)} problem(s)" in summary.read_text()


def test_entrypoint_options(tmp_path: Path, tools: Path) -> None:
    project = _project(tmp_path, {"a/Dockerfile": BAD, "b/Dockerfile": BAD, "c/Dockerfile": BAD})

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(ENTRYPOINT)], cwd=project, capture_output=True, text=True,
                              timeout=120, env=_env(tools, **env))  # fmt: skip

    lenient = run(
        DOPT_FAIL_ON_FINDINGS="false",
        DOPT_PATHS="a\nb",
        DOPT_SARIF_FILE="reports/out.sarif",
        DOPT_ARGS="--select DO100",
    )
    assert lenient.returncode == 0, lenient.stderr
    assert {line.split(",")[0] for line in lenient.stdout.splitlines()} == {
        "::warning file=a/Dockerfile",
        "::warning file=b/Dockerfile",
    }
    assert len(json.loads((project / "reports" / "out.sarif").read_text())["runs"][0]["results"]) == 4

    ignored = run(DOPT_ARGS="--select DO100 --ignore DO100")
    assert ignored.returncode == 0 and "::warning" not in ignored.stdout
    assert json.loads((project / "dopt.sarif").read_text())["runs"][0]["results"] == []

    missing = run(DOPT_PATHS="no-such-folder")
    assert missing.returncode == 2
    assert "no-such-folder: no such file or folder" in missing.stderr

    bad_option = run(DOPT_ARGS="--select NOPE")
    assert bad_option.returncode == 2 and "unknown rule selector" in bad_option.stderr

    bad_flag = run(DOPT_FAIL_ON_FINDINGS="yes")
    assert bad_flag.returncode == 2 and "must be true or false" in bad_flag.stdout

    no_dopt = run(DOPT="definitely-not-installed-dopt")
    assert no_dopt.returncode == 2 and "pip install dockerfile-optimizer" in no_dopt.stdout


def test_action_check_step_runs_as_the_runner_would(tmp_path: Path, tools: Path) -> None:
    """The `dopt` step's command with its `env:` filled from the inputs' defaults, as GitHub does."""
    action = _action()
    defaults = {name: str(spec["default"]) for name, spec in action["inputs"].items()}
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "dopt")

    def expand(value: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}", lambda m: defaults[m.group(1)], value)

    step_env = {key: expand(str(value)) for key, value in step["env"].items()}
    project = _project(tmp_path, {"Dockerfile": BAD, "dopt.toml": ONLY_DO100})
    outputs = tmp_path / "github_output"
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=project, capture_output=True, text=True, timeout=120,
        env=_env(tools, GITHUB_ACTION_PATH=str(ROOT), GITHUB_OUTPUT=str(outputs), **step_env),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::warning file=Dockerfile,line=1" in done.stdout
    assert (project / defaults["sarif-file"]).is_file()
    assert "findings=2" in outputs.read_text()


# -- GitLab CI template -----------------------------------------------------------------------


def test_gitlab_template_structure() -> None:
    config = _gitlab()
    job = config["dopt-check"]
    assert job["extends"] == ".dopt"
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    assert "dopt.sarif" in job["artifacts"]["paths"]
    assert job["artifacts"]["when"] == "always"
    assert job["allow_failure"] == {"exit_codes": [1]}
    assert any("dockerfile-optimizer" in line for line in config[".dopt"]["before_script"])
    assert any("dopt bot --provider gitlab" in line for line in config[".dopt-bot"]["script"])
    assert set(config["variables"]) >= {"DOPT_PATHS", "DOPT_ARGS", "DOPT_VERSION"}


def test_gitlab_template_matches_the_gitlab_schema() -> None:
    _check_jsonschema("vendor.gitlab-ci", GITLAB)


def _run_gitlab_script(project: Path, tools: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """The job's script lines in one shell, stopping at the first failure, as the GitLab runner runs them."""
    config = _gitlab()
    env = _env(tools, **{k: str(v) for k, v in config["variables"].items()})
    env.update(variables)
    script = "set -e\n" + "\n".join(config["dopt-check"]["script"]) + "\n"
    return subprocess.run(["sh", "-c", script], cwd=project, capture_output=True, text=True, timeout=120, env=env)


def test_gitlab_job_writes_code_quality_and_sarif(tmp_path: Path, tools: Path) -> None:
    project = _project(
        tmp_path,
        {"Dockerfile": BAD, "web/Dockerfile": "FROM debian:12\nrun echo a\nrun echo a\n", "dopt.toml": ONLY_DO100},
    )
    done = _run_gitlab_script(project, tools)
    assert done.returncode == 1, done.stdout + done.stderr  # allowed to fail: a warning in the pipeline
    assert "Dockerfile:1:1: DO100" in done.stdout  # readable findings in the job log
    report = json.loads((project / "gl-code-quality-report.json").read_text())
    assert len(report) == 4
    for issue in report:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["check_name"] == "DO100" and issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["location"]["lines"]["begin"] >= 1
    assert {i["location"]["path"] for i in report} == {"Dockerfile", "web/Dockerfile"}
    assert len({i["fingerprint"] for i in report}) == 4  # the two identical findings stay distinct
    assert json.loads((project / "dopt.sarif").read_text())["version"] == "2.1.0"


def test_gitlab_job_passes_on_clean_files_and_fails_hard_on_errors(tmp_path: Path, tools: Path) -> None:
    project = _project(tmp_path, {"Dockerfile": GOOD, "dopt.toml": ONLY_DO100})
    clean = _run_gitlab_script(project, tools)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads((project / "gl-code-quality-report.json").read_text()) == []
    broken = _run_gitlab_script(project, tools, DOPT_PATHS="missing")
    assert broken.returncode == 2


def test_code_quality_fingerprints_survive_moved_lines() -> None:
    from dopt.bot.codequality import convert

    def sarif(line: int) -> dict[str, Any]:
        result = {
            "ruleId": "DO100",
            "level": "warning",
            "message": {"text": "keyword 'run' should be upper case"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": "./Dockerfile"}, "region": {"startLine": line}}}
            ],
        }
        return {
            "runs": [{"tool": {"driver": {"rules": [{"id": "DO100", "name": "keyword-case"}]}}, "results": [result]}]
        }

    before, after = convert(sarif(2)), convert(sarif(7))
    assert before[0]["fingerprint"] == after[0]["fingerprint"]
    assert before[0]["location"] == {"path": "Dockerfile", "lines": {"begin": 2}}
    assert before[0]["description"] == "DO100 keyword-case: keyword 'run' should be upper case"
