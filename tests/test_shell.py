"""Behaviour of the shell layer: positions, contexts, invocations, edits and merge hazards."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dopt.optimizer.shell import (
    Command,
    Edit,
    HazardKind,
    Scope,
    ShellScript,
    analyze_merge,
    merge_hazards,
    parse_shell,
)


def named(script: ShellScript, name: str) -> list[Command]:
    """The commands of ``script`` whose name is ``name``."""
    return [c for c in script.commands() if c.name is not None and c.name.value == name]


def add_no_cache_dir(text: str) -> str:
    """What a pip transform does: insert ``--no-cache-dir`` after every ``pip install``."""
    script = parse_shell(text)
    edits = [
        Edit.insert(inv.subcommand_word.end, " --no-cache-dir")
        for inv in script.invocations("pip", "install")
        if inv.subcommand_word is not None
    ]
    return script.apply(edits)


# -- finding commands and their positions ------------------------------------------------------


def test_and_or_list_positions_and_operators() -> None:
    text = "a && pip install x || true"
    script = parse_shell(text)
    a, pip, true = script.commands()
    assert [w.text for w in pip.words] == ["pip", "install", "x"]
    assert text[pip.start : pip.end] == "pip install x"
    assert (pip.words[1].start, pip.words[1].end) == (9, 16)
    assert (a.context.op_before, a.context.op_after) == (None, "&&")
    assert (pip.context.op_before, pip.context.op_after) == ("&&", "||")
    assert (true.context.op_before, true.context.op_after) == ("||", None)
    assert add_no_cache_dir(text) == "a && pip install --no-cache-dir x || true"


def test_subshell_commands_know_they_are_in_a_subshell() -> None:
    text = "apt-get update && (cd /app && pip install -r requirements.txt)"
    script = parse_shell(text)
    (cd,) = named(script, "cd")
    (pip,) = named(script, "pip")
    (update,) = named(script, "apt-get")
    assert cd.context.in_subshell and pip.context.in_subshell
    assert not update.context.in_subshell
    assert not cd.context.runs_in_current_shell
    assert (pip.context.op_before, pip.context.op_after) == ("&&", None)  # within the subshell's list
    assert [item.kind for item in script.items] == ["command", "subshell"]
    assert add_no_cache_dir(text) == "apt-get update && (cd /app && pip install --no-cache-dir -r requirements.txt)"


def test_if_condition_and_body() -> None:
    text = "if pip --version; then pip install x; else echo none; fi"
    script = parse_shell(text)
    version, install = named(script, "pip")
    (echo,) = named(script, "echo")
    assert version.context.scopes == (Scope.IF_CONDITION,)
    assert version.context.in_condition
    assert install.context.scopes == (Scope.IF_BODY,)
    assert echo.context.scopes == (Scope.IF_BODY,)
    assert add_no_cache_dir(text) == "if pip --version; then pip install --no-cache-dir x; else echo none; fi"
    assert script.items[0].kind == "if"


def test_loops_case_and_functions_are_scopes() -> None:
    text = (
        "for p in a b; do pip install $p; done\n"
        "while false; do sleep 1; done\n"
        'case "$(uname -m)" in x86_64) arch=amd64 ;; *) exit 1 ;; esac\n'
        "setup() { pip install y; }"
    )
    script = parse_shell(text)
    first, last = named(script, "pip")
    assert first.context.scopes == (Scope.LOOP_BODY,)
    assert named(script, "false")[0].context.scopes == (Scope.LOOP_CONDITION,)
    assert named(script, "uname")[0].context.in_substitution
    (exit_,) = named(script, "exit")
    assert exit_.context.scopes == (Scope.CASE_BRANCH,)
    assert exit_.context.op_after == ";;"
    assert last.context.in_function
    assert [item.kind for item in script.items] == ["for", "while", "case", "function"]
    assert [item.op_after for item in script.items] == ["\n", "\n", "\n", None]


def test_pipeline_negation_and_background() -> None:
    script = parse_shell("! curl -fsSL https://x | sh -s -- -y && sleep 5 &")
    curl, sh, sleep = script.commands()
    assert (curl.context.pipeline_index, curl.context.pipeline_length) == (0, 2)
    assert curl.context.in_pipeline and not curl.context.is_last_in_pipeline
    assert sh.context.is_last_in_pipeline
    assert curl.context.negated and sh.context.negated and not sleep.context.negated
    assert all(c.context.background for c in (curl, sh, sleep))
    assert script.items[0].kind == "pipeline" and script.items[0].negated
    assert script.ends_in_background


def test_command_substitution_and_backticks() -> None:
    text = 'echo "$(pip install a)" `pip install b` && ls <(pip list)'
    script = parse_shell(text)
    a, b, listing = named(script, "pip")
    assert a.context.scopes == (Scope.COMMAND_SUBSTITUTION,)
    assert b.context.scopes == (Scope.COMMAND_SUBSTITUTION,)
    assert listing.context.scopes == (Scope.PROCESS_SUBSTITUTION,)
    assert text[a.start : a.end] == "pip install a"
    assert add_no_cache_dir(text) == (
        'echo "$(pip install --no-cache-dir a)" `pip install --no-cache-dir b` && ls <(pip list)'
    )


def test_quoted_operators_are_not_structure() -> None:
    text = """echo "a && pip install x; b" 'c || d' && pip install y"""
    script = parse_shell(text)
    assert [c.name.text for c in script.commands() if c.name] == ["echo", "pip"]
    assert script.operators == ("&&",)
    assert script.commands()[0].words[1].value == "a && pip install x; b"
    assert add_no_cache_dir(text) == """echo "a && pip install x; b" 'c || d' && pip install --no-cache-dir y"""


def test_line_continuations() -> None:
    text = "apt-get update \\\n    && apt-get install -y \\\n        curl \\\n    && rm -rf /var/lib/apt/lists/*"
    script = parse_shell(text)
    update, install, rm = script.commands()
    assert text[install.start : install.end] == "apt-get install -y \\\n        curl"
    assert [w.text for w in install.words] == ["apt-get", "install", "-y", "curl"]
    assert text[install.words[3].start : install.words[3].end] == "curl"
    assert script.is_and_chain
    assert rm.words[-1].value is None  # a glob is not a static value
    assert not update.context.in_pipeline


def test_comments_are_not_commands_and_cannot_be_edited() -> None:
    text = "# pip install a\npip install b # pip install c\n"
    script = parse_shell(text)
    (pip,) = script.commands()
    assert pip.words[2].value == "b"
    assert script.comments == ((0, 15), (30, 45))
    assert add_no_cache_dir(text) == "# pip install a\npip install --no-cache-dir b # pip install c\n"
    with pytest.raises(ValueError, match="comment"):
        script.apply([Edit.insert(text.index("install c"), "x")])
    with pytest.raises(ValueError):
        script.apply([Edit.insert(45, " more")])  # the end of a comment line is still the comment


def test_offsets_are_characters_not_utf8_bytes() -> None:
    text = "echo 'héllo wörld ✓' && pip install naïve-pkg"
    script = parse_shell(text)
    (pip,) = named(script, "pip")
    package = pip.words[2]
    assert text[package.start : package.end] == "naïve-pkg"
    assert package.value == "naïve-pkg"
    assert add_no_cache_dir(text) == "echo 'héllo wörld ✓' && pip install --no-cache-dir naïve-pkg"


# -- words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("plain", "plain"),
        ("'single $quoted'", "single $quoted"),
        ('"double \\"quoted\\""', 'double "quoted"'),
        ("con'cat'\"enated\"", "concatenated"),
        ("esc\\ aped", "esc aped"),
        ("$'tab\\there'", "tab\there"),
        ("--opt=value", "--opt=value"),
        ("'*.whl'", "*.whl"),
        ("$HOME", None),
        ('"$HOME/x"', None),
        ("${VERSION:-1}", None),
        ("$(date)", None),
        ("*.whl", None),
        ("file{a,b}", None),
        ("~/bin", None),
        ("$((1+2))", None),
    ],
)
def test_word_values(word: str, value: str | None) -> None:
    command = parse_shell(f"echo {word}").commands()[0]  # `$(date)` adds a nested command
    assert command.words[1].text == word
    assert command.words[1].value == value


def test_assignments_are_separate_from_words() -> None:
    (command,) = parse_shell('DEBIAN_FRONTEND=noninteractive X="$Y" apt-get install -y tzdata').commands()
    assert [a.text for a in command.assignments] == ["DEBIAN_FRONTEND=noninteractive", 'X="$Y"']
    assert [a.value for a in command.assignments] == ["DEBIAN_FRONTEND=noninteractive", None]
    assert command.name is not None and command.name.value == "apt-get"


def test_redirections_are_not_words() -> None:
    text = 'pip install x 2>&1 >/dev/null && read -r v <<< "$(cat f)"'
    pip, read, cat = parse_shell(text).commands()
    assert [w.text for w in pip.words] == ["pip", "install", "x"]
    assert [(r.fd, r.operator, r.target.text if r.target else None) for r in pip.redirects] == [
        ("2", ">&", "1"),
        (None, ">", "/dev/null"),
    ]
    assert text[pip.start : pip.end] == "pip install x 2>&1 >/dev/null"
    assert [r.operator for r in read.redirects] == ["<<<"]
    assert cat.context.in_substitution


def test_declaration_commands_are_commands() -> None:
    script = parse_shell("export PATH=/opt/bin:$PATH LANG=C.UTF-8; unset TMP")
    export, unset = script.commands()
    assert [w.text for w in export.words] == ["export", "PATH=/opt/bin:$PATH", "LANG=C.UTF-8"]
    assert [w.value for w in export.words] == ["export", None, "LANG=C.UTF-8"]
    assert unset.name is not None and unset.name.value == "unset"


# -- heredocs --------------------------------------------------------------------------------------


def test_heredoc_body_is_not_parsed_as_commands() -> None:
    text = "cat > /etc/pip.conf <<EOF && pip install x\n[global]\npip install y\nEOF\npip install z"
    script = parse_shell(text)
    assert [c.words[-1].text for c in named(script, "pip")] == ["x", "z"]
    (heredoc,) = script.heredocs
    assert heredoc.delimiter == "EOF" and not heredoc.quoted
    assert text[heredoc.body_start : heredoc.body_end] == "[global]\npip install y\n"
    assert text[heredoc.body_end : heredoc.end] == "EOF"
    (cat,) = named(script, "cat")
    assert text[cat.start : cat.end] == "cat > /etc/pip.conf <<EOF"
    assert [r.operator for r in cat.redirects] == [">", "<<"]
    assert [item.op_after for item in script.items] == ["&&", "\n", None]
    assert add_no_cache_dir(text) == (
        "cat > /etc/pip.conf <<EOF && pip install --no-cache-dir x\n[global]\npip install y\nEOF\n"
        "pip install --no-cache-dir z"
    )
    with pytest.raises(ValueError, match="heredoc"):
        script.apply([Edit.insert(text.index("pip install y") + 3, " --no-cache-dir")])
    assert script.is_literal(heredoc.body_end + 3)  # right after the delimiter: still part of it


def test_heredoc_substitutions_run_only_when_unquoted() -> None:
    script = parse_shell("cat <<EOF\n$(pip install a)\nEOF\ncat <<'EOF'\n$(pip install b)\nEOF")
    (pip,) = named(script, "pip")
    assert pip.words[2].value == "a"
    assert pip.context.scopes == (Scope.HEREDOC, Scope.COMMAND_SUBSTITUTION)
    assert [h.quoted for h in script.heredocs] == [False, True]


def test_tab_stripping_heredoc() -> None:
    text = "cat <<-END | sh\n\techo hi\n\tEND\necho after"
    script = parse_shell(text)
    (heredoc,) = script.heredocs
    assert heredoc.strip_tabs
    assert text[heredoc.body_start : heredoc.body_end] == "\techo hi\n"
    assert [c.name.text for c in script.commands() if c.name] == ["cat", "sh", "echo"]


# -- wrappers and programs ----------------------------------------------------------------------


def test_sudo_apt_get_invocation() -> None:
    text = "sudo -E apt-get -y install --no-install-recommends curl git"
    (command,) = parse_shell(text).commands()
    inv = command.invocation()
    assert inv is not None
    assert (inv.program, inv.wrappers, inv.program_index, inv.subcommand) == ("apt-get", ("sudo",), 2, "install")
    assert inv.subcommand_index == 4
    assert [w.text for w in inv.options_before] == ["-y"]
    assert [w.text for w in inv.options_after] == ["--no-install-recommends"]
    assert [w.text for w in inv.operands] == ["curl", "git"]
    assert inv.has_option("-y") and inv.has_option("--no-install-recommends") and not inv.has_option("-q")


@pytest.mark.parametrize(
    ("text", "program", "subcommand", "wrappers"),
    [
        ("python -m pip install x", "pip", "install", ()),
        ("python3 -m pip install x", "pip", "install", ()),
        ("/usr/local/bin/python3.12 -u -m pip install x", "pip", "install", ()),
        ("pip3 install x", "pip", "install", ()),
        ("env PIP_NO_CACHE_DIR=1 nice -n 10 pip install x", "pip", "install", ("env", "nice")),
        ("time command pip install x", "pip", "install", ("time", "command")),
        ("sudo -u app -- apt-get install x", "apt-get", "install", ("sudo",)),
        ("apt-get -o Dpkg::Options::=--force-confold -qq install x", "apt-get", "install", ()),
        ("gosu app npm ci", "npm", "ci", ("gosu",)),
        ("python3 script.py install", "python3", None, ()),
        ("command -v pip", "command", None, ()),
    ],
)
def test_invocations(text: str, program: str, subcommand: str | None, wrappers: tuple[str, ...]) -> None:
    (command,) = parse_shell(text).commands()
    inv = command.invocation()
    assert inv is not None
    assert (inv.program, inv.subcommand, inv.wrappers) == (program, subcommand, wrappers)


def test_python_m_pip_edit_lands_after_install() -> None:
    assert add_no_cache_dir("python3 -m pip install -U pip") == "python3 -m pip install --no-cache-dir -U pip"


def test_double_dash_ends_options() -> None:
    (command,) = parse_shell("pip install --upgrade -- -odd-name other").commands()
    inv = command.invocation()
    assert inv is not None
    assert [w.text for w in inv.options_after] == ["--upgrade"]
    assert [w.text for w in inv.operands] == ["-odd-name", "other"]
    assert inv.end_of_options_index == 3


def test_option_values_are_not_operands() -> None:
    (command,) = parse_shell("apk add --no-cache --virtual .build-deps gcc musl-dev").commands()
    inv = command.invocation()
    assert inv is not None
    assert [w.text for w in inv.operands] == ["gcc", "musl-dev"]


def test_dynamic_program_has_no_invocation() -> None:
    (command,) = parse_shell('"$PIP" install x').commands()
    assert command.invocation() is None


# -- top-level structure and edits --------------------------------------------------------------


def test_top_level_structure() -> None:
    assert parse_shell("a && b && c").is_and_chain
    assert parse_shell("a && b;").is_and_chain
    assert not parse_shell("a && b || c").is_and_chain
    assert parse_shell("a; b\nc || d &").operators == (";", "\n", "||", "&")
    assert not parse_shell("a").ends_in_background


def test_apply_rejects_overlaps_and_keeps_insert_order() -> None:
    script = parse_shell("pip install x")
    assert script.apply([Edit.insert(11, " -q"), Edit.insert(11, " -U")]) == "pip install -q -U x"
    assert script.apply([Edit(12, 13, "y")]) == "pip install y"
    with pytest.raises(ValueError, match="overlaps"):
        script.apply([Edit(4, 11, "i"), Edit(10, 12, "")])
    with pytest.raises(ValueError, match="outside"):
        script.apply([Edit.insert(99, "x")])


def test_edits_inside_quotes_are_rejected() -> None:
    text = 'echo "pip install x"'
    script = parse_shell(text)
    with pytest.raises(ValueError, match="quoted"):
        script.apply([Edit.insert(text.index("install") + 7, " --no-cache-dir")])
    assert script.apply([Edit(5, len(text), "'y'")]) == "echo 'y'"  # the whole quoted word may go


# -- parse problems ------------------------------------------------------------------------------


def test_bad_shell_does_not_raise() -> None:
    script = parse_shell("if then fi (( && ")
    assert script.has_errors
    assert merge_hazards(script)[0].startswith("the script does not parse cleanly")


def test_newline_after_pipeline_is_a_separator() -> None:
    # tree-sitter-bash glues `echo B` onto `head -30` here (upstream issue #347).
    text = "a | grep x | head -30\necho B && cd s"
    script = parse_shell(text)
    assert not script.has_errors
    assert [c.name.text for c in script.commands() if c.name] == ["a", "grep", "head", "echo", "cd"]
    assert [w.text for w in named(script, "head")[0].words] == ["head", "-30"]
    assert script.operators == ("\n", "&&")


def test_assignment_lines_stay_separate() -> None:
    # tree-sitter-bash reads the three lines as one command named `if` (upstream issue #228).
    script = parse_shell("a=1 b=2\nc=3\nif true; then pip install x; fi")
    assert [item.kind for item in script.items] == ["assignment", "assignment", "if"]
    assert named(script, "pip")[0].context.scopes == (Scope.IF_BODY,)


@pytest.mark.parametrize(
    "text",
    [
        "cat <<EOF; echo after\nbody\nEOF",  # upstream issue #346
        "echo `a`\necho ` b`",  # upstream issue #278
    ],
)
def test_known_misparses_are_reported(text: str) -> None:
    assert parse_shell(text).has_errors


# -- merge hazards -------------------------------------------------------------------------------


def test_plain_chain_merges_safely() -> None:
    assert merge_hazards("apt-get update && apt-get install -y curl || true", "rm -rf /var/lib/apt/lists/*") == ()
    assert merge_hazards("a; b\nc") == ()  # `&&` binds to the status of the last command, as RUN does
    assert merge_hazards("(cd /src && make) && x=$(cd /tmp; pwd) | cat") == ()


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("cd /app && make", HazardKind.STATE_CHANGE, "working directory"),
        ("set -eux; apt-get update", HazardKind.STATE_CHANGE, "shell options"),
        ("export PATH=/x:$PATH", HazardKind.STATE_CHANGE, "exports"),
        ("VERSION=1.2", HazardKind.STATE_CHANGE, "`VERSION`"),
        ("shopt -s globstar", HazardKind.STATE_CHANGE, "shell options"),
        ("retry() { a || a; }", HazardKind.STATE_CHANGE, "function `retry`"),
        ("for f in *.deb; do dpkg -i $f; done", HazardKind.STATE_CHANGE, "`f`"),
        ("if [ -f x ]; then exit 0; fi", HazardKind.EARLY_EXIT, "exit"),
        ("exec nginx", HazardKind.EARLY_EXIT, "replaces the shell"),
        ("dockerd &", HazardKind.BACKGROUND, "ends with `&`"),
        ("make # build", HazardKind.TRAILING_TEXT, "comment"),
        ("make;", HazardKind.TRAILING_TEXT, "`;`"),
        ("cat <<EOF > /f\nx\nEOF", HazardKind.TRAILING_TEXT, "here-document"),
        ("# only a comment", HazardKind.EMPTY, "no commands"),
    ],
)
def test_hazards_of_the_first_script(text: str, kind: HazardKind, fragment: str) -> None:
    hazards = analyze_merge(text)
    assert kind in [h.kind for h in hazards]
    assert any(fragment in h.reason for h in hazards if h.kind == kind)


def test_hazards_of_the_second_script() -> None:
    reasons = merge_hazards("apt-get update", "apt-get install -y x || true")
    assert len(reasons) == 1 and "`||`" in reasons[0]
    hazards = analyze_merge("make", "cd /x\nmake install")
    assert [h.kind for h in hazards] == [HazardKind.NOT_AND_CHAIN]
    assert hazards[0].in_second and hazards[0].fixed_by_subshell


def test_subshell_fixes_state_but_not_background_jobs() -> None:
    by_kind = {h.kind: h for h in analyze_merge("cd /x && sleep 100 &")}
    assert by_kind[HazardKind.BACKGROUND].fixed_by_subshell is False
    (state,) = analyze_merge("cd /x && make")
    assert state.fixed_by_subshell
    assert analyze_merge("(cd /x && make)") == ()


# -- start-up cost -------------------------------------------------------------------------------


def test_importing_the_module_does_not_load_tree_sitter() -> None:
    code = "import sys, dopt.optimizer.shell; print('tree_sitter' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
