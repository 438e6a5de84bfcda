"""The ``dopt`` command.

Exit codes: 0 nothing to report (or everything fixed), 1 findings or pending changes
(``check``, ``fix --check``, ``fix --diff``), 2 usage error, bad configuration or a file that
cannot be read or parsed. A batch reports a bad file and carries on with the others.

Annotations here are evaluated when the module loads (no ``from __future__ import annotations``):
typer reads every command's signature at start-up, and compiling string annotations then costs
more than evaluating them once with the module's own bytecode.
"""

import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dopt import __version__

if TYPE_CHECKING:
    from dopt.optimizer.config import Settings
    from dopt.optimizer.pipeline import Result
    from dopt.optimizer.syntax import DockerfileSyntaxError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}

app = typer.Typer(
    name="dopt",
    help=(
        "Rewrite Dockerfiles into smaller, faster-rebuilding, safer ones, explaining every change.\n\n"
        "Start with `dopt fix --diff Dockerfile` to see what would change, `dopt fix Dockerfile` to apply "
        "the safe fixes, and `dopt explain CODE` to read why a rule exists."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class UsageError(Exception):
    """A problem with what the user asked for; reported as one line, exit 2."""


@dataclass(frozen=True)
class _Options:
    select: tuple[str, ...] | None
    ignore: tuple[str, ...]
    extend_select: tuple[str, ...]
    unsafe_fixes: bool | None
    config: Path | None
    cache_mounts: bool = False
    pin: str | None = None
    pin_specificity: str | None = None
    update_pins: bool = False
    offline: bool = False
    registry_mirrors: tuple[str, ...] = ()


def _split(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for raw in values or () for v in raw.split(",") if v.strip())


def _error(message: str) -> None:
    sys.stderr.write(f"dopt: error: {message}\n")


def is_dockerfile_name(name: str) -> bool:
    lower = name.lower()
    return (
        name in DOCKERFILE_NAMES
        or name.startswith(("Dockerfile.", "Containerfile."))
        or lower.endswith((".dockerfile", ".containerfile"))
    )


def discover(paths: Sequence[str]) -> Iterator[tuple[Path, str | None]]:
    """Dockerfiles named by ``paths`` (folders searched); yields (path, error) for bad arguments."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = False
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                for name in sorted(files):
                    if is_dockerfile_name(name):
                        found = True
                        yield Path(folder) / name, None
            if not found:
                yield (
                    path,
                    "no Dockerfile found in this folder (looked for Dockerfile, Dockerfile.*, "
                    "*.Dockerfile, *.dockerfile, Containerfile)",
                )
        elif path.exists():
            yield path, None
        else:
            yield path, "no such file or folder"


def _pin_options(
    pin: str | None, pin_specificity: str | None, update_pins: bool, offline: bool, registry_mirrors: Sequence[str]
) -> dict[str, object]:
    """The registry switches as the ``[tool.dopt.rules]`` options they override."""
    options: dict[str, object] = {}
    if pin:
        options["pin"] = pin
    if pin_specificity:
        options["pin-specificity"] = pin_specificity
    if update_pins:
        options["update-pins"] = True
    if offline:
        options["registry-offline"] = True
    if registry_mirrors:
        mirrors: dict[str, list[str]] = {}
        for entry in registry_mirrors:
            registry, sep, url = entry.partition("=")
            if not sep or not registry or not url:
                raise UsageError(
                    f"--registry-mirror expects REGISTRY=URL (e.g. docker.io=https://mirror.gcr.io), got {entry!r}"
                )
            mirrors.setdefault(registry, []).append(url)
        options["registry-mirrors"] = mirrors
    return options


@cache
def _folder_settings(folder: Path, explicit: Path | None):  # type: ignore[no-untyped-def]
    """The configuration in force in ``folder``: looked up once per folder in a run of the command."""
    from dopt.optimizer.config import settings_for

    return settings_for(folder, explicit)


def _settings(opts: _Options, target: Path):
    settings = _folder_settings(target if target.is_dir() else target.parent, opts.config)
    options: dict[str, object] = {"cache-mounts": True} if opts.cache_mounts else {}
    options |= _pin_options(opts.pin, opts.pin_specificity, opts.update_pins, opts.offline, opts.registry_mirrors)
    return settings.merged(
        select=opts.select,
        ignore=opts.ignore,
        extend_select=(*opts.extend_select, *(("DO410",) if opts.update_pins else ())),
        unsafe_fixes=opts.unsafe_fixes,
        rule_options=options or None,
    )


def _with_registry_answers(files: "list[tuple[Path, str, Settings]]") -> "list[tuple[Path, str, Settings]]":
    """Ask the registries about every file's FROM images at once (only when pinning is asked for).

    This is the only place dopt uses the network: rules stay pure and get the answers as options.
    """
    from dopt.registry.pinning import registry_options_for_files

    try:
        answers = registry_options_for_files([(path, text, settings.rule_options) for path, text, settings in files])
    except ValueError as err:
        raise UsageError(str(err)) from None
    return [(path, text, settings.merged(rule_options=answers.get(path))) for path, text, settings in files]


# Commands that load every rule before anything else; they switch the cycle collector back on
# themselves, once the rules are in (see dopt.__main__ and _collect_again).
_LOADS_RULES_FIRST = ("check", "fix")


def _collect_again() -> None:
    """End the console script's start-up: collect cycles again, but never look at what exists now.

    dopt.__main__ switches the collector off while modules load; the objects made so far live
    until the process ends, so they are frozen (moved out of the collector's sight) first. When
    the collector was never switched off (dopt used as a library, in tests) this does nothing.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _check_selectors(opts: _Options) -> None:
    from dopt.optimizer.config import validate_selectors
    from dopt.transforms import all_rules

    unknown = validate_selectors((*(opts.select or ()), *opts.ignore, *opts.extend_select), all_rules())
    _collect_again()
    if unknown:
        raise UsageError(f"unknown rule selector '{unknown[0]}' (see `dopt rules`)")


def _read(path: Path) -> str:
    from dopt.optimizer.syntax import decode

    try:
        data = path.read_bytes()
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from None
    return decode(data)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, keeping its permissions (temp file + rename)."""
    import tempfile

    from dopt.optimizer.syntax import encode

    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".dopt", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encode(text))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _syntax_message(display: str, err: Exception) -> str:
    from dopt.optimizer.syntax import DockerfileSyntaxError

    if isinstance(err, DockerfileSyntaxError):
        return f"{display}:{err.line}:{err.column}: {err.message}"
    return f"{display}: {err}"


def _emit_findings(reports: list, rules: list, output_format: str, unsafe_fixes: bool) -> None:  # type: ignore[type-arg]
    from dopt.optimizer import output

    if output_format == "json":
        sys.stdout.write(output.format_json(reports))
    elif output_format == "sarif":
        sys.stdout.write(output.format_sarif(reports, rules))
    elif output_format == "github":
        sys.stdout.write(output.format_github(reports))
    else:
        sys.stdout.write(output.format_text(reports, color=sys.stdout.isatty(), unsafe_fixes=unsafe_fixes))


def _check_format(output_format: str) -> str:
    from dopt.optimizer.output import OUTPUT_FORMATS

    if output_format not in OUTPUT_FORMATS:
        raise UsageError(f"unknown output format '{output_format}' (choose from {', '.join(OUTPUT_FORMATS)})")
    return output_format


SelectOpt = Annotated[
    list[str] | None,
    typer.Option("--select", help="Only these rules: codes, prefixes (DO2), hadolint codes, names, or ALL."),
]
IgnoreOpt = Annotated[
    list[str] | None, typer.Option("--ignore", help="Skip these rules (same forms as --select).")
]
ExtendOpt = Annotated[
    list[str] | None,
    typer.Option("--extend-select", help="Add rules to the default (or configured) selection."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Use this dopt.toml or pyproject.toml instead of the nearest one."),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--output-format", "-o", help="Findings as text, json, sarif (2.1.0) or github annotations."
    ),
]
PathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Dockerfiles or folders to search (default: current folder). `-` reads standard input."
    ),
]
StdinNameOpt = Annotated[
    str | None,
    typer.Option("--stdin-filename", help="Name of the file given on standard input (config, messages)."),
]
CacheMountsOpt = Annotated[
    bool,
    typer.Option(
        "--cache-mounts",
        help="Keep package caches in BuildKit cache mounts (RUN --mount=type=cache) instead of deleting them.",
    ),
]
PinOpt = Annotated[
    str | None,
    typer.Option(
        "--pin",
        help="Pin FROM images to what their tags point to now: tag, digest or both. Asks their registries "
        "(answers cached for an hour); without it dopt never uses the network.",
    ),
]
PinSpecificityOpt = Annotated[
    str | None,
    typer.Option("--pin-specificity", help="Version parts of a pinned tag: major, minor or patch (default patch)."),
]
UpdatePinsOpt = Annotated[
    bool,
    typer.Option("--update-pins", help="Also report pinned FROM images their registry has moved past (DO410)."),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Answer registry look-ups from the cache only; never use the network.")
]
RegistryMirrorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--registry-mirror",
        help="REGISTRY=URL: look images of REGISTRY (e.g. docker.io) up at this mirror first, as Docker's "
        "registry-mirrors setting does.",
    ),
]
ContextOpt = Annotated[
    Path | None, typer.Option("--context", help="Build context folder (default: the Dockerfile's folder).")
]


@app.command()
def check(
    paths: PathsArg = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    extend_select: ExtendOpt = None,
    config: ConfigOpt = None,
    output_format: FormatOpt = "text",
    stdin_filename: StdinNameOpt = None,
    context: ContextOpt = None,
    cache_mounts: CacheMountsOpt = False,
    pin: PinOpt = None,
    pin_specificity: PinSpecificityOpt = None,
    update_pins: UpdatePinsOpt = False,
    offline: OfflineOpt = False,
    registry_mirror: RegistryMirrorOpt = None,
) -> None:
    """Report findings (`file:line:col CODE message`) without changing anything. Exit 1 if any."""
    opts = _Options(
        _split(select) or None, _split(ignore), _split(extend_select), None, config, cache_mounts,
        pin, pin_specificity, update_pins, offline, tuple(registry_mirror or ()),
    )  # fmt: skip
    raise typer.Exit(_run(paths, opts, mode="check", output_format=output_format,
                          stdin_filename=stdin_filename, context=context))  # fmt: skip


@app.command()
def fix(
    paths: PathsArg = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff; write nothing. Exit 1 if changes.")
    ] = False,
    check_only: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file would change.")
    ] = False,
    unsafe_fixes: Annotated[
        bool | None,
        typer.Option("--unsafe-fixes/--no-unsafe-fixes", help="Also apply fixes that may change behaviour."),
    ] = None,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
    extend_select: ExtendOpt = None,
    config: ConfigOpt = None,
    output_format: FormatOpt = "text",
    stdin_filename: StdinNameOpt = None,
    context: ContextOpt = None,
    show_findings: Annotated[
        bool, typer.Option("--show-findings", help="Also list the findings that remain after fixing.")
    ] = False,
    cache_mounts: CacheMountsOpt = False,
    pin: PinOpt = None,
    pin_specificity: PinSpecificityOpt = None,
    update_pins: UpdatePinsOpt = False,
    offline: OfflineOpt = False,
    registry_mirror: RegistryMirrorOpt = None,
) -> None:
    """Apply fixes in place (safe ones unless --unsafe-fixes). `dopt fix -` reads stdin, writes stdout."""
    opts = _Options(
        _split(select) or None, _split(ignore), _split(extend_select), unsafe_fixes, config, cache_mounts,
        pin, pin_specificity, update_pins, offline, tuple(registry_mirror or ()),
    )  # fmt: skip
    mode = "diff" if diff else "dry" if check_only else "fix"
    raise typer.Exit(
        _run(
            paths,
            opts,
            mode=mode,
            output_format=output_format,
            stdin_filename=stdin_filename,
            context=context,
            show_findings=show_findings,
        )
    )


def _run(
    paths: Sequence[str] | None,
    opts: _Options,
    *,
    mode: str,
    output_format: str,
    stdin_filename: str | None,
    context: Path | None,
    show_findings: bool = False,
) -> int:
    from dopt.optimizer.output import FileReport, unified_diff
    from dopt.optimizer.pipeline import run
    from dopt.optimizer.syntax import DockerfileSyntaxError, decode, encode

    _check_format(output_format)
    _check_selectors(opts)
    _folder_settings.cache_clear()  # configuration files may have changed since an earlier run in this process
    targets = list(paths or ["."])
    if "-" in targets and len(targets) > 1:
        raise UsageError("`-` (standard input) cannot be combined with other paths")

    if targets == ["-"]:
        display = stdin_filename or "-"
        data = sys.stdin.buffer.read()
        target = Path(stdin_filename or ".").resolve()
        settings = _settings(opts, target)
        rules = settings.rules_for(_all_rules(), stdin_filename)
        try:
            text = decode(data)
            ((_, _, settings),) = _with_registry_answers([(target, text, settings)])
            result = run(text, rules, fix=mode != "check", unsafe_fixes=settings.unsafe_fixes, path=display,
                         context_dir=context or Path(stdin_filename or ".").resolve().parent,
                         options=settings.rule_options)  # fmt: skip
        except DockerfileSyntaxError as err:
            # An editor must never lose its buffer: echo the input unchanged, report on stderr.
            if mode in ("fix", "dry"):
                sys.stdout.buffer.write(data)
            _error(_syntax_message(display, err))
            return EXIT_ERROR
        if mode == "check":
            _emit_findings(
                [FileReport(display, result.remaining)], rules, output_format, settings.unsafe_fixes
            )
            return EXIT_FINDINGS if result.remaining else EXIT_OK
        if mode == "diff":
            sys.stdout.write(unified_diff(text, result.output, display))
            return EXIT_FINDINGS if result.changed else EXIT_OK
        sys.stdout.buffer.write(encode(result.output))
        _report_rejected(display, result)
        return EXIT_FINDINGS if mode == "dry" and result.changed else EXIT_OK

    status = EXIT_OK
    reports: list[FileReport] = []
    all_rules_used: list = []  # type: ignore[type-arg]
    fixed_total = changed_files = remaining_total = 0
    files: list[tuple[Path, str, Settings]] = []
    for path, problem in discover(targets):
        try:
            if problem:
                raise UsageError(f"{path}: {problem}")
            files.append((path, _read(path), _settings(opts, path)))
        except DockerfileSyntaxError as err:
            _error(_syntax_message(str(path), err))
            status = EXIT_ERROR
        except UsageError as err:
            _error(str(err))
            status = EXIT_ERROR
    for path, text, settings, outcome in _run_all(_with_registry_answers(files), mode, context):
        if isinstance(outcome, DockerfileSyntaxError):
            _error(_syntax_message(str(path), outcome))
            status = EXIT_ERROR
            continue
        result = outcome
        all_rules_used = settings.rules_for(_all_rules(), str(path))
        _report_rejected(str(path), result)
        if mode == "check":
            reports.append(FileReport(str(path), result.remaining))
            if result.remaining and status == EXIT_OK:
                status = EXIT_FINDINGS
            continue
        fixed_total += len(result.fixed)
        remaining_total += len(result.remaining)
        if show_findings:
            reports.append(FileReport(str(path), result.remaining, result.fixed))
        if not result.changed:
            continue
        changed_files += 1
        if mode == "diff":
            sys.stdout.write(unified_diff(text, result.output, str(path)))
        elif mode == "dry":
            sys.stderr.write(f"Would fix {len(result.fixed)} finding(s) in {path}\n")
        else:
            try:
                write_atomic(path, result.output)
            except OSError as err:
                _error(f"{path}: cannot write: {err.strerror}")
                status = EXIT_ERROR
                continue
        if mode in ("diff", "dry") and status == EXIT_OK:
            status = EXIT_FINDINGS
    if mode == "check" or show_findings:
        _emit_findings(reports, all_rules_used or _all_rules(), output_format, opts.unsafe_fixes or False)
    if mode in ("fix", "diff", "dry"):
        verb = {"fix": "Fixed", "diff": "Would fix", "dry": "Would fix"}[mode]
        sys.stderr.write(
            f"{verb} {fixed_total} finding(s) in {changed_files} file(s); {remaining_total} remaining"
            + (" (run `dopt check` to list them)" if remaining_total and not show_findings else "")
            + ".\n"
        )
    return status


# Below this many files a process pool costs more to start than it saves.
_PARALLEL_THRESHOLD = 64


def _fix_one(job: "tuple[Path, str, Settings, str, Path | None]") -> "Result | DockerfileSyntaxError":
    """Check or fix one file; a module-level function so that worker processes can run it."""
    from dopt.optimizer.pipeline import run
    from dopt.optimizer.syntax import DockerfileSyntaxError

    path, text, settings, mode, context = job
    rules = settings.rules_for(_all_rules(), str(path))
    try:
        return run(text, rules, fix=mode != "check", unsafe_fixes=settings.unsafe_fixes, path=str(path),
                   context_dir=context or path.parent, options=settings.rule_options)  # fmt: skip
    except DockerfileSyntaxError as err:
        return err


def _run_all(
    files: "list[tuple[Path, str, Settings]]", mode: str, context: Path | None
) -> "Iterator[tuple[Path, str, Settings, Result | DockerfileSyntaxError]]":
    """Results in input order; a large batch is spread over the machine's cores."""
    jobs = [(path, text, settings, mode, context) for path, text, settings in files]
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) < _PARALLEL_THRESHOLD or workers < 2:
        outcomes: Iterable[Result | DockerfileSyntaxError] = map(_fix_one, jobs)
        for (path, text, settings), outcome in zip(files, outcomes, strict=True):
            yield path, text, settings, outcome
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, len(jobs) // (workers * 8))
        for (path, text, settings), outcome in zip(files, pool.map(_fix_one, jobs, chunksize=chunk), strict=True):
            yield path, text, settings, outcome


@cache
def _all_rules() -> list:  # type: ignore[type-arg]
    from dopt.transforms import all_rules

    return all_rules()


def _report_rejected(display: str, result) -> None:  # type: ignore[no-untyped-def]
    for rejected in result.rejected:
        f = rejected.finding
        sys.stderr.write(f"{display}:{f.line}:{f.column}: {f.code} fix not applied: {rejected.reason}\n")


@app.command("rules")
def list_rules(
    output_format: Annotated[str, typer.Option("--output-format", "-o", help="text or json")] = "text",
) -> None:
    """List every rule: code, name, fix safety, and whether it is on by default."""
    import json

    rules = _all_rules()
    if output_format == "json":
        sys.stdout.write(json.dumps([
            {"code": r.code, "name": r.name, "summary": r.summary, "hadolint": r.hadolint,
             "fix": r.fix_safety.value if r.fix_safety else None, "default": r.default_enabled}
            for r in rules
        ], indent=2) + "\n")  # fmt: skip
        return
    for r in rules:
        fix_label = r.fix_safety.value if r.fix_safety else "-"
        alias = f" ({r.hadolint})" if r.hadolint else ""
        default = "" if r.default_enabled else " [opt-in]"
        sys.stdout.write(f"{r.code:7} {r.name:34} fix:{fix_label:7} {r.summary}{alias}{default}\n")


@app.command()
def explain(
    code: Annotated[str, typer.Argument(help="A rule code (DO100), hadolint code or rule name.")],
) -> None:
    """Print a rule's documentation: what it does, why, an example, and how safe its fix is."""
    from dopt.optimizer.config import matches

    for rule in _all_rules():
        if code.upper() in rule.codes() or code == rule.name or (matches(rule, [code]) and len(code) > 4):
            sys.stdout.write(rule.documentation() + "\n")
            return
    raise UsageError(f"no rule '{code}' (see `dopt rules`)")


@app.command()
def verify(
    dockerfile: Annotated[Path, typer.Argument(help="The Dockerfile to fix and verify.")],
    context: ContextOpt = None,
    unsafe_fixes: Annotated[bool, typer.Option("--unsafe-fixes", help="Verify the unsafe fixes too.")] = False,
    smoke: Annotated[
        str | None,
        typer.Option("--smoke", help="A command (sh -c) run beside each container, e.g. 'curl -fsS localhost:8000'."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text, json or markdown")] = "text",
) -> None:
    """Build the original and the fixed Dockerfile with Docker and compare them.

    Measures image size, layers, cold build time and the rebuild time after a one-line code change,
    compares the two images' files and runs both containers. Exit 1 if the fix made anything worse
    or changed behaviour, 2 without a Docker engine.
    """
    from dopt.verify.command import OUTPUT_FORMATS, run_verify

    if output_format not in OUTPUT_FORMATS:
        raise UsageError(f"unknown format '{output_format}' (choose from {', '.join(OUTPUT_FORMATS)})")
    raise typer.Exit(run_verify(dockerfile, context, unsafe_fixes, smoke, output_format))


@app.command()
def layers(
    target: Annotated[str, typer.Argument(help="A local image, or a Dockerfile to build first.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")] = None,
) -> None:
    """Where the bytes are: size per layer, the instruction that made it, and wasted bytes."""
    from dopt.verify.command import run_layers

    raise typer.Exit(run_layers(target, html))


@app.command()
def bench(
    examples: Annotated[Path, typer.Argument(help="A folder of example apps, each with a Dockerfile.")] = Path(
        "examples"
    ),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the table here.")] = None,
) -> None:
    """Verify every example before/after (safe and unsafe fixes) and print one markdown table."""
    from dopt.verify.bench import main as bench_main

    raise typer.Exit(bench_main([str(examples), *(["-o", str(output)] if output else [])]))


@app.command()
def bot(
    repo: Annotated[str, typer.Argument(help="Clone URL or local repository (a working copy's origin is used).")] = ".",
    provider: Annotated[str, typer.Option("--provider", help="github or gitlab.")] = "github",
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="API URL (default: the public API, or the clone host's /api/v3 or /api/v4)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="API token (default: $GITHUB_TOKEN or $GITLAB_TOKEN).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="owner/name or group/sub/name (default: from the clone URL).")
    ] = None,
    branch: Annotated[str, typer.Option("--branch", help="The bot's branch.")] = "dopt/fixes",
    unsafe_fixes: Annotated[
        bool, typer.Option("--unsafe-fixes", help="Also apply fixes that may change behaviour.")
    ] = False,
    verify_savings: Annotated[
        bool, typer.Option("--verify", help="Measure size and rebuild time with Docker; put them in the description.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the commit and description; push and open nothing.")
    ] = False,
    pin: PinOpt = None,
    pin_specificity: PinSpecificityOpt = None,
    update_pins: Annotated[
        bool,
        typer.Option(
            "--update-pins",
            help="Also bump pinned FROM images their registry has moved past (DO410; marked unsafe for review).",
        ),
    ] = False,
    offline: OfflineOpt = False,
    registry_mirror: RegistryMirrorOpt = None,
) -> None:
    """Fix a repository's Dockerfiles and open (or update) one pull/merge request explaining each change.

    Running it again updates the same request; nothing is pushed when nothing changed, and it stops
    (exit 1) if anyone else committed to the bot's branch. --pin and --update-pins (or the same
    options in the repository's [tool.dopt.rules]) keep base images pinned and up to date.
    """
    from dopt.bot import run_bot

    raise typer.Exit(
        run_bot(
            repo,
            provider=provider,
            base_url=base_url,
            token=token,
            project=project,
            branch=branch,
            unsafe_fixes=unsafe_fixes,
            verify=verify_savings,
            dry_run=dry_run,
            pin_options=_pin_options(pin, pin_specificity, update_pins, offline, registry_mirror or ()),
        )
    )


@app.command()
def lsp() -> None:
    """Run the language server on standard input/output (diagnostics, quick fixes, formatting, hover)."""
    from dopt.lsp import serve

    serve()


def version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"dopt {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    """Rewrite Dockerfiles into smaller, faster-rebuilding, safer ones."""
    if ctx.invoked_subcommand not in _LOADS_RULES_FIRST:
        _collect_again()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs the command and turns every failure into a message and an exit code."""
    from dopt.optimizer.config import ConfigError

    try:
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
        return code if isinstance(code, int) else EXIT_OK
    except typer.Exit as done:
        return done.exit_code
    except (UsageError, ConfigError) as err:
        _error(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as err:  # the promise: no traceback reaches a user
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            return EXIT_ERROR
        if isinstance(err, click.exceptions.Abort):
            return EXIT_ERROR
        if os.environ.get("DOPT_DEBUG"):
            raise
        _error(f"internal error ({type(err).__name__}: {err}); rerun with DOPT_DEBUG=1 and report it")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
