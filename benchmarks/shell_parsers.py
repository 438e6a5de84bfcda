"""Compare shell parsers for RUN scripts: tree-sitter-bash versus bashlex.

The shell layer (``dopt/optimizer/shell.py``) needs a real grammar that copes with what people
actually write in ``RUN`` instructions.  This script measures, over a varied corpus of realistic
scripts, for each parser:

* how many scripts it parses without reporting an error;
* how many it parses *correctly*, i.e. the simple commands it finds (names, in source order)
  match the expected list -- a parser that silently glues two lines into one command is worse
  than one that reports an error;
* the parse time per script.

Run it with ``python benchmarks/shell_parsers.py``.  Both parsers must be installed
(``pip install tree-sitter tree-sitter-bash bashlex``); only tree-sitter-bash is a runtime
dependency of dopt.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

# (description, script, expected simple-command names in source order).  `[`/`[[` tests and
# assignment-only commands are left out of the expectations: the two parsers model them differently.
CORPUS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "apt-get chain with continuations",
        "apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n"
        "        curl ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*",
        ("apt-get", "apt-get", "rm"),
    ),
    (
        "set -eux; then chain",
        "set -eux; \\\n\tapt-get update; \\\n\tapt-get install -y gosu; \\\n\trm -rf /var/lib/apt/lists/*;"
        " \\\n\tgosu nobody true",
        ("set", "apt-get", "apt-get", "rm", "gosu"),
    ),
    (
        "pip with || fallback",
        "pip install --upgrade pip && pip install -r requirements.txt || true",
        ("pip", "pip", "true"),
    ),
    ("python -m pip", "python3 -m pip install --user -e .", ("python3",)),
    (
        "if/then/else with test",
        'if [ -f requirements.txt ]; then pip install -r requirements.txt; else echo "no reqs"; fi',
        ("pip", "echo"),
    ),
    (
        "case on architecture (official images)",
        'dpkgArch="$(dpkg --print-architecture)"; \\\n  case "${dpkgArch##*-}" in \\\n'
        "    amd64) ARCH='x64';; \\\n    arm64) ARCH='arm64';; \\\n"
        '    *) echo "unsupported architecture"; exit 1 ;; \\\n  esac',
        ("dpkg", "echo", "exit"),
    ),
    (
        "for loop over keys",
        "for key in 4ED778F539E3634C779C87C6D7062848A1AB005C \\\n"
        "    141F07595B7B3FFE74309A937405533BE57C7D57; do \\\n"
        '    gpg --batch --keyserver hkps://keys.openpgp.org --recv-keys "$key"; \\\n  done',
        ("gpg",),
    ),
    (
        "function definition and call",
        "retry() {\n  n=0\n  until apt-get update; do\n    n=$((n+1)); [ $n -ge 3 ] && return 1; sleep 5\n"
        "  done\n}\nretry",
        ("apt-get", "return", "sleep", "retry"),
    ),
    (
        "command substitution $(...)",
        'curl -fsSL "https://example.com/$(uname -m)/tool.tar.gz" | tar -xz -C /usr/local/bin',
        ("curl", "uname", "tar"),
    ),
    (
        "backticks",
        "echo `date +%s` > /build-time && ln -s `which python3` /usr/bin/python",
        ("echo", "date", "ln", "which"),
    ),
    ("here-string", 'read -r a b <<< "$(cat /etc/os-release | head -1)"', ("read", "cat", "head")),
    (
        "heredoc inside the script",
        'cat > /etc/apt/apt.conf.d/99norecommends <<EOF\nAPT::Install-Recommends "false";\n'
        'APT::Install-Suggests "false";\nEOF\napt-get update',
        ("cat", "apt-get"),
    ),
    (
        "quoted heredoc piped to sh",
        "cat <<'EOF' | sh\nset -e\necho $HOME\nEOF",
        ("cat", "sh"),
    ),
    (
        "heredoc then && on the same line",
        "cat <<EOF > /app/config.ini && chmod 600 /app/config.ini\n[main]\nport=8080\nEOF",
        ("cat", "chmod"),
    ),
    (
        "heredoc then ; on the same line",
        "cat <<EOF > /etc/app.conf; chmod 644 /etc/app.conf\nkey=value\nEOF",
        ("cat", "chmod"),
    ),
    ("arithmetic expansion", 'make -j"$(( $(nproc) + 1 ))" && make install', ("make", "nproc", "make")),
    ("arithmetic command", "i=0; while (( i < 3 )); do i=$((i+1)); done; echo $i", ("echo",)),
    ("arrays", 'pkgs=(curl git "build-essential"); apt-get install -y "${pkgs[@]}"', ("apt-get",)),
    (
        "[[ ]] test",
        '[[ "$TARGETARCH" == "arm64" ]] && export GOARCH=arm64 || export GOARCH=amd64',
        ("export", "export"),
    ),
    (
        "default parameter expansion",
        'pip install "poetry==${POETRY_VERSION:-1.8.3}" && poetry config virtualenvs.create false',
        ("pip", "poetry"),
    ),
    (
        "process substitution",
        'diff <(sort a.txt) <(sort b.txt) || echo "differ"',
        ("diff", "sort", "sort", "echo"),
    ),
    (
        "odd quoting",
        """echo 'it'"'"'s' "a \\"quoted\\" && word" $'tab\\there' && printf '%s\\n' "x""y"'z'""",
        ("echo", "printf"),
    ),
    ("subshell with cd", "(cd /src && make) && (cd /docs; make html)", ("cd", "make", "cd", "make")),
    ("brace group", "{ echo a; echo b; } > /out.txt 2>&1", ("echo", "echo")),
    ("negation and background", "! grep -q foo /etc/hosts && sleep 10 & wait", ("grep", "sleep", "wait")),
    (
        "sudo and env wrappers",
        "sudo -E env DEBIAN_FRONTEND=noninteractive apt-get -y install tzdata",
        ("sudo",),
    ),
    ("comments", "apt-get update # refresh\n# install\napt-get install -y vim", ("apt-get", "apt-get")),
    ("non-ASCII text", "echo 'héllo wörld ✓' && pip install naïve-pkg", ("echo", "pip")),
    (
        "assignment lines then command",
        'export PATH="/opt/bin:$PATH"\nGOOS=linux GOARCH=amd64\nexport CGO_ENABLED=0\ngo build ./...',
        ("export", "export", "go"),
    ),
    (
        "multi-line pipeline then command",
        "curl -sSL https://get.example.com | sh -s -- -y | tail -5\necho done && rm -rf /tmp/*",
        ("curl", "sh", "tail", "echo", "rm"),
    ),
    (
        "while read loop",
        'while IFS= read -r line; do echo "$line" >> /out; done < /in.txt',
        ("read", "echo"),
    ),
    ("until loop", "until curl -fs http://localhost:8080/health; do sleep 1; done", ("curl", "sleep")),
    (
        "nested substitution in assignment",
        'VERSION="$(curl -s https://example.com/latest | grep -o "v[0-9.]*" | head -1)" && echo "$VERSION"',
        ("curl", "grep", "head", "echo"),
    ),
    (
        "find -exec",
        "find / -xdev -name '*.pyc' -exec rm -f {} + \\\n"
        " && find /usr -type d -name __pycache__ -prune -exec rm -rf '{}' \\;",
        ("find", "find"),
    ),
    (
        "useradd with group chain",
        "groupadd -r app && useradd -r -g app -d /home/app -s /sbin/nologin app && chown -R app:app /app",
        ("groupadd", "useradd", "chown"),
    ),
    (
        "apk virtual packages",
        "apk add --no-cache --virtual .build-deps gcc musl-dev \\\n && pip install cryptography \\\n"
        " && apk del .build-deps",
        ("apk", "pip", "apk"),
    ),
    (
        "local and declare in function",
        'f() { local x="$1"; declare -a arr=(1 2); echo "$x" "${arr[@]}"; }; f hi',
        ("local", "declare", "echo", "f"),
    ),
    (
        "time and nice",
        "time nice -n 10 make -j4 2>&1 | tee build.log",
        ("time", "tee"),
    ),
    (
        "c-style for",
        "for ((i=0; i<3; i++)); do echo $i; done",
        ("echo",),
    ),
)


@dataclass(frozen=True)
class Outcome:
    """What one parser made of one script."""

    parsed: bool
    names: tuple[str, ...] | None
    seconds: float


def _tree_sitter_runner() -> Callable[[str], tuple[bool, tuple[str, ...]]]:
    """Build a tree-sitter-bash parse function (parser construction is not timed per script)."""
    import tree_sitter
    import tree_sitter_bash

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))

    def run(script: str) -> tuple[bool, tuple[str, ...]]:
        root = parser.parse(script.encode()).root_node
        found: list[tuple[int, str]] = []
        stack = [root]
        while stack:
            node = stack.pop()
            if node.type == "command":
                name = node.child_by_field_name("name")
                if name is not None:
                    found.append((node.start_byte, name.text.decode()))
            elif node.type in ("declaration_command", "unset_command"):
                found.append((node.start_byte, node.children[0].type))
            stack.extend(node.children)
        return not root.has_error, tuple(name for _, name in sorted(found))

    return run


def _bashlex_runner() -> Callable[[str], tuple[bool, tuple[str, ...]]]:
    """Build a bashlex parse function; bashlex signals unsupported syntax by raising."""
    import bashlex

    def run(script: str) -> tuple[bool, tuple[str, ...]]:
        try:
            trees = bashlex.parse(script)
        except Exception:  # bashlex raises ParsingError, NotImplementedError, and others
            return False, ()
        found: list[tuple[int, str]] = []

        class Visitor(bashlex.ast.nodevisitor):  # type: ignore[misc]
            def visitcommand(self, node: object, parts: list[object]) -> None:
                for part in parts:
                    if part.kind == "word":  # type: ignore[attr-defined]
                        if part.word not in ("[", "[["):  # type: ignore[attr-defined]
                            found.append((part.pos[0], part.word))  # type: ignore[attr-defined]
                        return

        for tree in trees:
            Visitor().visit(tree)
        return True, tuple(name for _, name in sorted(found))

    return run


def measure(run: Callable[[str], tuple[bool, tuple[str, ...]]], script: str, repeat: int) -> Outcome:
    """Parse `script` `repeat` times and keep the best time, to damp scheduler noise."""
    best = float("inf")
    parsed, names = False, ()
    for _ in range(repeat):
        start = time.perf_counter()
        parsed, names = run(script)
        best = min(best, time.perf_counter() - start)
    return Outcome(parsed, names if parsed else None, best)


def main(repeat: int = 50) -> None:
    """Print a per-script table and a summary per parser."""
    runners = {"tree-sitter-bash": _tree_sitter_runner(), "bashlex": _bashlex_runner()}
    results: dict[str, list[Outcome]] = {name: [] for name in runners}
    print(f"{'script':44} " + " ".join(f"{name:>24}" for name in runners))
    for description, script, expected in CORPUS:
        cells = []
        for name, run in runners.items():
            outcome = measure(run, script, repeat)
            results[name].append(outcome)
            if not outcome.parsed:
                verdict = "error"
            elif outcome.names == expected:
                verdict = "ok"
            else:
                verdict = "WRONG"
            cells.append(f"{verdict:>7} {outcome.seconds * 1e6:8.1f} us")
        print(f"{description[:44]:44} " + " ".join(f"{cell:>24}" for cell in cells))
    print()
    total = len(CORPUS)
    for name, outcomes in results.items():
        parsed = sum(o.parsed for o in outcomes)
        correct = sum(o.parsed and o.names == exp for o, (_, _, exp) in zip(outcomes, CORPUS, strict=True))
        times = [o.seconds * 1e6 for o in outcomes]
        print(
            f"{name}: parsed without error {parsed}/{total}, commands correct {correct}/{total}, "
            f"parse time per script median {statistics.median(times):.1f} us, "
            f"mean {statistics.fmean(times):.1f} us, max {max(times):.1f} us"
        )


if __name__ == "__main__":
    main()
