"""The syntax tree reads every file as BuildKit does and prints it back byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracle import buildkit_view, dopt_view, known_difference

from dopt.optimizer.syntax import DockerfileSyntaxError, decode, parse

REPO = Path(__file__).resolve().parents[1]
BUILDKIT_CASES = REPO.parent / "shared" / "corpus" / "buildkit-parser"
FIXTURES = REPO / "tests" / "fixtures" / "syntax"


def _buildkit_cases() -> list[Path]:
    cases = sorted(p for p in BUILDKIT_CASES.iterdir() if (p / "Dockerfile").is_file())
    assert len(cases) >= 30, f"BuildKit parser fixtures missing under {BUILDKIT_CASES}"
    return cases


@pytest.mark.parametrize("case", _buildkit_cases(), ids=lambda p: p.name)
def test_buildkit_fixture_round_trips_and_dumps_like_buildkit(case: Path) -> None:
    text = decode((case / "Dockerfile").read_bytes())
    doc = parse(text)
    assert doc.render() == text
    assert doc.dump() == (case / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [*sorted(FIXTURES.glob("*.Dockerfile")), *(c / "Dockerfile" for c in _buildkit_cases())],
    ids=lambda p: p.parent.name if p.name == "Dockerfile" else p.name,
)
def test_instruction_list_agrees_with_buildkit(path: Path) -> None:
    text = decode(path.read_bytes())
    doc = parse(text)
    assert doc.render() == text
    assert dopt_view(doc) == buildkit_view(text)


def test_every_node_knows_its_position() -> None:
    text = "# escape=`\r\nFROM a\r\n  run echo `\r\n   # inside\r\n   b\r\nCOPY <<EOF /x\r\nhi\r\nEOF\r\n"
    doc = parse(text)
    run = doc.instructions[1]
    assert (run.line, run.end_line) == (3, 5)
    assert doc.position(run.keyword_start) == (3, 3)
    assert run.keyword == "run" and run.name == "RUN"
    assert run.args == "echo    b"
    assert text[run.start : run.end] == "  run echo `\r\n   # inside\r\n   b\r\n"
    assert [text[s:e] for s, e in run.comment_lines] == ["   # inside\r\n"]
    copy = doc.instructions[2]
    assert copy.heredocs[0].content == "hi\r\n" and (copy.line, copy.end_line) == (6, 8)
    assert doc.newline_at(run.start) == "\r\n"
    assert doc.escape == "`"


def test_flags_keep_their_source_positions() -> None:
    text = "FROM a\nRUN --mount=type=cache,target=/root/.cache \\\n    --network=none pip install x\n"
    run = parse(text).instructions[1]
    assert [(f.name, f.value) for f in run.flags] == [
        ("mount", "type=cache,target=/root/.cache"),
        ("network", "none"),
    ]
    assert text[run.flags[1].start : run.flags[1].end] == "--network=none"
    assert run.args == "pip install x"
    start, end = run.source_range(run.args_start, run.args_start + 3)
    assert text[start:end] == "pip"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\nRUN <<EOF\necho\n", 2, "unterminated heredoc"),
        ("FROM a\nCMD [1, 2]\n", 2, "arrays must be comprised of strings only"),
        ("# just a comment\n\n", 2, "file with no instructions"),
        ("", 1, "file with no instructions"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        ("# escape=`\n# escape=\\\nFROM a\n", 2, "only one escape parser directive"),
        ("FROM a\nENV ONLYKEY\n", 2, "ENV must have two arguments"),
        ("FROM a\nLABEL a=b c\n", 2, "can't find = in"),
    ],
)
def test_bad_input_is_rejected_where_buildkit_rejects_it(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as err:
        parse(text)
    assert message in err.value.message
    assert err.value.line == line
    with pytest.raises(ValueError):
        buildkit_view(text)


def test_binary_data_is_refused_before_parsing() -> None:
    with pytest.raises(DockerfileSyntaxError, match="binary data"):
        decode(b"FROM a\n\x00\x01\x02")


def test_undecodable_bytes_survive_a_round_trip() -> None:
    data = b"FROM a\n# caf\xe9 in latin-1\nRUN echo \xff\n"
    doc = parse(decode(data))
    assert doc.render().encode("utf-8", "surrogateescape") == data


# ---------------------------------------------------------------------------------------------
# Generated Dockerfiles: whatever BuildKit makes of them, dopt makes the same; and prints them back.

_TOKENS = st.sampled_from([*"abcxyz019_-./:=@$%{}'\"\\`#é\t ", "&&", "||", ";", "<<", "[", "]"])
_word = st.lists(_TOKENS, max_size=8).map("".join)
_keywords = st.sampled_from(
    ["FROM", "from", "Run", "RUN", "COPY", "ADD", "ENV", "LABEL", "ARG", "CMD", "ENTRYPOINT", "SHELL",
     "WORKDIR", "USER", "EXPOSE", "VOLUME", "HEALTHCHECK", "ONBUILD RUN", "ONBUILD", "MAINTAINER",
     "STOPSIGNAL", "FOO"]
)  # fmt: skip
_flag = st.sampled_from(["--mount=type=cache,target=/x", "--from=build", "--chown=1:1", "--link", "--", '--x="a b"'])


@st.composite
def _instruction(draw: st.DrawFn, esc: str, nl: str) -> str:
    keyword = draw(_keywords)
    flags = draw(st.lists(_flag, max_size=2))
    if draw(st.booleans()):
        args = draw(st.lists(_word, max_size=5))
    else:
        items = draw(st.lists(st.text("ab c", max_size=3), max_size=3))
        args = ["[" + ", ".join(f'"{w}"' for w in items) + "]"]
    pieces = [keyword, *flags, *args]
    out = draw(st.sampled_from(["", " ", "\t"])) + pieces[0]
    for piece in pieces[1:]:
        if draw(st.integers(0, 4)) == 0:
            out += " " + esc + draw(st.sampled_from(["", " ", "\t "])) + nl
            out += draw(st.sampled_from(["", "# inside" + nl, "   " + nl, "  # c " + esc + nl]))
            out += draw(st.sampled_from(["", "  ", "\t"]))
        else:
            out += " "
        out += piece
    heredoc = ""
    if keyword.upper() in ("RUN", "COPY", "ADD", "ONBUILD RUN") and draw(st.booleans()):
        name = draw(st.sampled_from(["EOF", "E2"]))
        chomp = draw(st.booleans())
        quoted = draw(st.sampled_from(["", "'", '"']))
        out += f" <<{'-' if chomp else ''}{quoted}{name}{quoted}"
        body = draw(st.lists(_word, max_size=3))
        heredoc = "".join(("\t" if chomp else "") + line + nl for line in body)
        heredoc += ("\t" if chomp and draw(st.booleans()) else "") + name + nl
    return out + nl + heredoc


@st.composite
def _dockerfile(draw: st.DrawFn) -> str:
    esc = draw(st.sampled_from(["\\", "`"]))
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    head = ""
    if draw(st.booleans()):
        head += "\ufeff"
    if esc == "`" or draw(st.booleans()):
        head += f"# escape={esc}{nl}"
    if draw(st.booleans()):
        head += f"# syntax=docker/dockerfile:1{nl}"
    blocks = draw(
        st.lists(
            st.one_of(
                _instruction(esc, nl),
                st.sampled_from([nl, "   " + nl, "# comment" + nl, "  # indented" + nl]),
            ),
            min_size=1,
            max_size=8,
        )
    )
    text = head + "".join(blocks)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_dockerfile())
def test_generated_files_agree_with_buildkit(text: str) -> None:
    assume(known_difference(text, None) is None)
    try:
        doc = parse(text)
    except DockerfileSyntaxError:
        with pytest.raises(ValueError):
            buildkit_view(text)
        return
    assume(known_difference(text, doc) is None)
    assert doc.render() == text
    assert dopt_view(doc) == buildkit_view(text)


# Heredoc cases BuildKit's own heredoc tests pin down (names, quoting, chomping, descriptors),
# including ones the oracle's older BuildKit cannot read (``<<  EOF`` with blanks).
HEREDOC_CASES = [
    ("RUN <<EMPTY\nEMPTY\n", [("EMPTY", "", True, False, 0)]),
    ("RUN 3<<FD\nFD\n", [("FD", "", True, False, 3)]),
    ('RUN "<<NOT_A_HEREDOC"\n', []),
    ("USER <<NOT_FOR_USER\n", []),
    ("RUN <<IN\n\tfoo\n\tbar\nIN\n", [("IN", "\tfoo\n\tbar\n", True, False, 0)]),
    ("RUN <<-OUT\n\tbaz\n\tOUT\n", [("OUT", "\tbaz\n", True, True, 0)]),
    ("RUN <<-'QUIET'\n\tno $EXPANSION\nQUIET\n", [("QUIET", "\tno $EXPANSION\n", False, True, 0)]),
    (
        "COPY <<ONE <<TWO /dest\nfirst\nONE\nsecond\nTWO\n",
        [("ONE", "first\n", True, False, 0), ("TWO", "second\n", True, False, 0)],
    ),
    ("COPY <<X <<Y /d\nY\nX\nX\nY\n", [("X", "Y\n", True, False, 0), ("Y", "X\n", True, False, 0)]),
    ("RUN <<CMD python3\nprint(1)\nCMD\n", [("CMD", "print(1)\n", True, False, 0)]),
    ("COPY <<conf.txt /etc/conf.txt\nhello\nconf.txt\n", [("conf.txt", "hello\n", True, False, 0)]),
    ("RUN <<te'r'm\necho\nterm\n", [("term", "echo\n", False, False, 0)]),
    ("RUN <<te\\'rm\necho\nte'rm\n", [("te'rm", "echo\n", True, False, 0)]),
    ("RUN <<'a b'\necho\na b\n", [("a b", "echo\n", False, False, 0)]),
    ("RUN <<$VAR\n$VAR\n", [("$VAR", "", True, False, 0)]),
    ("RUN <<  SPACED\nSPACED\n", [("SPACED", "", True, False, 0)]),
    ("RUN <<  SPACED  > out\nSPACED\n", [("SPACED", "", True, False, 0)]),
    ('RUN ["sh", "-c", "cat <<EOF"]\n', []),
    ("ONBUILD RUN <<LATER\necho\nLATER\n", [("LATER", "echo\n", True, False, 0)]),
]


@pytest.mark.parametrize(("body", "expected"), HEREDOC_CASES, ids=[c[0].split("\n")[0] for c in HEREDOC_CASES])
def test_heredocs_are_read_as_buildkit_reads_them(body: str, expected: list[tuple]) -> None:
    text = "FROM alpine\n" + body + "CMD done\n"
    doc = parse(text)
    assert doc.render() == text
    ins = doc.instructions[1]
    found = [(h.name, h.content, h.expand, h.chomp, h.file_descriptor) for h in ins.heredocs]
    assert found == expected
    assert doc.instructions[-1].args == "done"  # the heredoc bodies did not swallow later lines


@pytest.mark.parametrize(
    "text",
    [
        "# escape=`\nFROM `\n--é\n",
        "COPY --chown=à x y\n",
        "RUN --x=\x1cy z\n",
        "FROM a\nRUN \x1c echo\n",
        "# escape=`\nFROM\nFROM --\\\n",
        "# escape=`\nCOPY --chown=a`b --from=x\\y s d\n",
    ],
)
def test_flags_are_read_byte_by_byte_like_buildkit(text: str) -> None:
    """BuildKit splits flags on bytes: non-ASCII comes out as Latin-1, byte 0xA0 ends a word; its
    escape character there is always the backslash, even in a ``# escape=`` file."""
    assert dopt_view(parse(text)) == buildkit_view(text)
