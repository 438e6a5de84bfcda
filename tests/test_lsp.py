"""The language server, driven the way an editor drives it: JSON-RPC over the stdio of a real process.

The client below is written from the LSP specification (Content-Length framing, requests,
notifications, server-to-client requests), independently of pygls, so the test checks what goes
over the wire rather than what the server library believes it sends. Every wait has a deadline:
a hung server fails the test instead of blocking the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dopt.lsp.positions import UTF8, UTF16, UTF32, LineIndex, code_units, dopt_offset

TIMEOUT = 20.0  # seconds for any single answer; generous for slow CI machines

Message = dict[str, Any]


class LspClient:
    """A minimal LSP client: frames messages, matches responses to requests, queues notifications."""

    def __init__(self, cwd: Path) -> None:
        self.stderr_path = cwd / "server.stderr"
        self._stderr = self.stderr_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dopt.lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env=env,
        )
        self._next_id = 0
        self._incoming: queue.Queue[Message | None] = queue.Queue()
        self.notifications: list[Message] = []
        self.server_requests: list[Message] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # -- wire -------------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        """Parse framed messages from the server's stdout; ``None`` marks the end of the stream."""
        stream = self.proc.stdout
        assert stream is not None
        try:
            while True:
                length = None
                while True:
                    header = stream.readline()
                    if not header:
                        return
                    header = header.strip()
                    if not header:
                        break
                    name, _, value = header.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                assert length is not None, "a message without Content-Length"
                body = stream.read(length)
                if len(body) < length:
                    return
                self._incoming.put(json.loads(body.decode("utf-8")))
        finally:
            self._incoming.put(None)

    def _send(self, message: Message) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _receive(self, deadline: float) -> Message:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer from the server in time; its stderr:\n{self.stderr()}")
        try:
            message = self._incoming.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(f"no answer from the server in time; its stderr:\n{self.stderr()}") from None
        if message is None:
            raise ConnectionError(f"the server closed its output; its stderr:\n{self.stderr()}")
        if "method" in message and "id" in message:  # a request from the server: answer it
            self.server_requests.append(message)
            self._send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        return message

    # -- protocol ---------------------------------------------------------------------------------

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"method": method, **({"params": params} if params is not None else {})})

    def request(self, method: str, params: Any = None, timeout: float = TIMEOUT) -> Any:
        """Send a request and return its result; a JSON-RPC error fails the test."""
        self._next_id += 1
        ident = self._next_id
        self._send({"id": ident, "method": method, **({"params": params} if params is not None else {})})
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident and "method" not in message:
                assert "error" not in message, f"{method} failed: {message['error']}"
                return message.get("result")

    def wait_notification(
        self, method: str, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = TIMEOUT
    ) -> Any:
        """The params of the first notification ``method`` (already received or next) that fits."""
        for i, message in enumerate(self.notifications):
            if message["method"] == method and predicate(message.get("params")):
                del self.notifications[i]
                return message.get("params")
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("method") == method and "id" not in message and predicate(message.get("params")):
                self.notifications.remove(message)
                return message.get("params")

    def diagnostics(self, uri: str, version: int | None = None) -> list[Message]:
        params = self.wait_notification(
            "textDocument/publishDiagnostics",
            lambda p: p["uri"] == uri and (version is None or p.get("version") == version),
        )
        return params["diagnostics"]

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self._stderr.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[LspClient]:
    lsp = LspClient(tmp_path)
    try:
        yield lsp
    finally:
        lsp.close()


def initialize(lsp: LspClient, root: Path, encodings: list[str] | None = None, watch: bool = False) -> Message:
    capabilities: Message = {
        "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": watch}},
        "textDocument": {
            "publishDiagnostics": {"versionSupport": True},
            "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "source"]}}},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
        },
    }
    if encodings:
        capabilities["general"] = {"positionEncodings": encodings}
    result = lsp.request(
        "initialize",
        {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities, "workspaceFolders": None},
    )
    lsp.notify("initialized", {})
    return result


def shutdown(lsp: LspClient) -> int:
    assert lsp.request("shutdown") is None
    lsp.notify("exit")
    return lsp.proc.wait(timeout=TIMEOUT)


# -- an independent client-side view of positions: UTF-16 units, LSP line breaks -------------------


def split_lines(text: str) -> list[str]:
    """Lines with their breaks, where a break is CRLF, LF or CR (as the LSP specification says)."""
    lines, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\r" and text[i + 1 : i + 2] == "\n":
            lines.append(text[start : i + 2])
            i += 2
            start = i
        elif text[i] in "\r\n":
            lines.append(text[start : i + 1])
            i += 1
            start = i
        else:
            i += 1
    lines.append(text[start:])
    return lines


def to_offset(text: str, position: Message) -> int:
    lines = split_lines(text)
    before = sum(len(line) for line in lines[: position["line"]])
    line = lines[position["line"]].encode("utf-16-le", "surrogatepass")
    return before + len(line[: 2 * position["character"]].decode("utf-16-le", "surrogatepass"))


def apply_edits(text: str, edits: list[Message]) -> str:
    spans = sorted(((to_offset(text, e["range"]["start"]), to_offset(text, e["range"]["end"]), e["newText"])
                    for e in edits), reverse=True)  # fmt: skip
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


def edits_for(action: Message, uri: str) -> list[Message]:
    edit = action["edit"]
    if "changes" in edit:
        return edit["changes"][uri]
    (change,) = edit["documentChanges"]
    assert change["textDocument"]["uri"] == uri
    return change["edits"]


# -- the exchange ------------------------------------------------------------------------------------

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: one code point, two UTF-16 code units
SOURCE = (
    "from scratch\r\n"
    f"# Grüße — café ☕ and {EMOJI}\r\n"
    f"MAINTAINER Zoë {EMOJI} <zoe@example.com>\r\n"
    f'run echo "héllo {EMOJI}"\r\n'
)
SAFE_FIXED = SOURCE.replace("from ", "FROM ").replace("run ", "RUN ")
BROKEN = "FROM scratch\nRUN <<EOF\necho hi\n"


def by_line(diagnostics: list[Message]) -> dict[int, Message]:
    return {d["range"]["start"]["line"]: d for d in diagnostics}


def test_editor_session(client: LspClient, tmp_path: Path) -> None:
    from dopt.transforms import all_rules

    path = tmp_path / "Dockerfile"
    path.write_text(SOURCE, newline="")
    uri = path.as_uri()
    result = initialize(client, tmp_path)
    caps = result["capabilities"]
    assert caps["positionEncoding"] == "utf-16"
    assert caps["textDocumentSync"]["change"] == 1  # full text on every change
    assert caps["documentFormattingProvider"] and caps["hoverProvider"]
    assert "source.fixAll.dopt" in caps["codeActionProvider"]["codeActionKinds"]

    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "dockerfile", "version": 1, "text": SOURCE}},
    )
    diagnostics = client.diagnostics(uri, version=1)
    found = by_line(diagnostics)
    assert sorted(found) == [0, 2, 3]
    assert {d["source"] for d in diagnostics} == {"dopt"}
    assert [found[n]["code"] for n in (0, 2, 3)] == ["DO100", "DO101", "DO100"]
    assert all(d["severity"] == 2 for d in diagnostics)
    # A finding spans its instruction's first line, without the CR of the CRLF. After the emoji the
    # UTF-16 column is one more than the code point count.
    run_line = f'run echo "héllo {EMOJI}"'
    assert (len(run_line), len(run_line.encode("utf-16-le")) // 2) == (18, 19)
    assert found[3]["range"] == {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 19}}
    maintainer_line = f"MAINTAINER Zoë {EMOJI} <zoe@example.com>"
    assert found[2]["range"]["end"] == {"line": 2, "character": len(maintainer_line) + 1}
    assert found[0]["range"] == {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 12}}

    # Quick fix for the `run` keyword: applying its edit fixes exactly that line.
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": found[3]["range"], "context": {"diagnostics": [found[3]]}},
    )
    quick = [a for a in actions if a["kind"] == "quickfix"]
    assert len(quick) == 1 and quick[0]["isPreferred"] is True
    assert "(unsafe)" not in quick[0]["title"] and quick[0]["diagnostics"][0]["code"] == "DO100"
    fixed_run = apply_edits(SOURCE, edits_for(quick[0], uri))
    assert fixed_run == SOURCE.replace("run ", "RUN ")

    # The unsafe MAINTAINER fix is offered, marked as such; its edit ends after the emoji.
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": found[2]["range"], "context": {"diagnostics": [found[2]]}},
    )
    (unsafe,) = [a for a in actions if a["kind"] == "quickfix"]
    assert "(unsafe)" in unsafe["title"] and unsafe["isPreferred"] is False
    assert apply_edits(SOURCE, edits_for(unsafe, uri)) == SOURCE.replace(
        maintainer_line, f'LABEL maintainer="Zoë {EMOJI} <zoe@example.com>"'
    )

    # Fix all, as an editor asks for it on save.
    (fix_all,) = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll"]},
        },
    )
    assert fix_all["kind"] == "source.fixAll.dopt" and fix_all["title"] == "Fix all safe problems"
    assert apply_edits(SOURCE, edits_for(fix_all, uri)) == SAFE_FIXED

    # Formatting: the safe fixes as one edit over the whole document.
    (edit,) = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}},
    )
    assert edit["range"] == {"start": {"line": 0, "character": 0}, "end": {"line": 4, "character": 0}}
    assert edit["newText"] == SAFE_FIXED

    # Hover on an instruction with a finding shows the rule's documentation; elsewhere nothing.
    hover = client.request(
        "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 6}}
    )
    doc = next(r for r in all_rules() if r.code == "DO100").documentation()
    assert hover["contents"]["kind"] == "markdown"
    assert "DO100" in hover["contents"]["value"] and doc in hover["contents"]["value"]
    assert (
        client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 3}})
        is None
    )

    # Save: checked again.
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert len(client.diagnostics(uri)) == 3

    # Broken text: one syntax error where the heredoc starts; no crash, nothing to format or fix.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": BROKEN}]},
    )
    (error,) = client.diagnostics(uri, version=2)
    assert error["severity"] == 1 and error["source"] == "dopt"
    assert "unterminated heredoc" in error["message"]
    assert error["range"] == {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 9}}
    assert (
        client.request(
            "textDocument/formatting",
            {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}},
        )
        is None
    )
    assert (
        client.request(
            "textDocument/codeAction",
            {"textDocument": {"uri": uri}, "range": error["range"], "context": {"diagnostics": [error]}},
        )
        is None
    )

    # Repaired: the server is still there and checks the new text.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": BROKEN + "EOF\n"}]},
    )
    assert client.diagnostics(uri, version=3) == []

    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []
    assert shutdown(client) == 0


def test_configuration_of_the_document_folder(client: LspClient, tmp_path: Path) -> None:
    quiet, broken = tmp_path / "quiet", tmp_path / "broken"
    quiet.mkdir()
    broken.mkdir()
    (quiet / "dopt.toml").write_text('ignore = ["DO100"]\n')
    (broken / "dopt.toml").write_text("ignore = [\n")
    initialize(client, tmp_path, watch=True)
    text = "from scratch\nMAINTAINER me\n"
    for folder in (tmp_path, quiet, broken):
        uri = (folder / "Dockerfile").as_uri()
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "dockerfile", "version": 1, "text": text}},
        )
    everything = client.diagnostics((tmp_path / "Dockerfile").as_uri())
    assert sorted(d["code"] for d in everything) == ["DO100", "DO101"]
    assert [d["code"] for d in client.diagnostics((quiet / "Dockerfile").as_uri())] == ["DO101"]
    (problem,) = client.diagnostics((broken / "Dockerfile").as_uri())
    assert problem["severity"] == 1 and "dopt.toml" in problem["message"]

    # The server asked to hear about configuration files; an edited one applies at once.
    (registration,) = [r for r in client.server_requests if r["method"] == "client/registerCapability"]
    watchers = registration["params"]["registrations"][0]["registerOptions"]["watchers"]
    assert {w["globPattern"] for w in watchers} == {"**/pyproject.toml", "**/dopt.toml"}
    (broken / "dopt.toml").write_text('ignore = ["DO101"]\n')
    client.notify("workspace/didChangeWatchedFiles", {"changes": [{"uri": (broken / "dopt.toml").as_uri(), "type": 2}]})
    assert [d["code"] for d in client.diagnostics((broken / "Dockerfile").as_uri())] == ["DO100"]
    assert shutdown(client) == 0


def test_utf8_position_encoding(client: LspClient, tmp_path: Path) -> None:
    """A client that prefers UTF-8 gets byte columns."""
    result = initialize(client, tmp_path, encodings=["utf-8", "utf-16"])
    assert result["capabilities"]["positionEncoding"] == "utf-8"
    uri = "untitled:Untitled-1"
    line = "run echo é"
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "dockerfile", "version": 1, "text": f"FROM scratch\n{line}\n"}},
    )
    (diag,) = [d for d in client.diagnostics(uri) if d["code"] == "DO100"]
    assert diag["range"]["end"] == {"line": 1, "character": len(line.encode())}
    assert shutdown(client) == 0


def test_exit_without_shutdown_is_an_error(client: LspClient, tmp_path: Path) -> None:
    initialize(client, tmp_path)
    client.notify("exit")
    assert client.proc.wait(timeout=TIMEOUT) == 1


def test_a_failing_rule_becomes_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a rule is reported in the editor instead of stopping the server."""
    import dopt.transforms
    from dopt.lsp.server import analyse, diagnostics
    from dopt.optimizer.rules import Rule

    class Broken(Rule):
        code, name, summary = "DO999", "broken", "always fails"

        def check(self, ctx):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    monkeypatch.setattr(dopt.transforms, "all_rules", lambda: [Broken()])
    (diag,) = diagnostics(analyse("FROM x\n", None))
    assert diag.severity == 1 and "internal error" in diag.message and "boom" in diag.message


# -- positions without a server --------------------------------------------------------------------


def test_line_index_round_trips_and_clamps() -> None:
    text = f"a{EMOJI}b\r\nc\rd\n\u00e9"
    index = LineIndex(text, UTF16)
    assert index.line_count == 4  # CRLF, lone CR and LF all end lines for a client
    assert index.position(text.index("b")) == (0, 3)
    assert index.offset(0, 3) == text.index("b")
    assert index.offset(0, 2) == text.index(EMOJI)  # inside the surrogate pair: the character's start
    assert index.position(text.index("\r")) == index.position(text.index("\r") + 1) == (0, 4)
    assert index.position(text.index("d")) == (2, 0)
    assert index.offset(1, 99) == text.index("c") + 1  # past the end of a line: its end
    assert index.offset(9, 0) == len(text)
    assert index.end_position() == (3, 1)
    assert LineIndex(text, UTF8).position(text.index("b")) == (0, 5)
    assert LineIndex(text, UTF32).position(text.index("b")) == (0, 2)
    assert code_units(EMOJI, UTF16) == 2 and code_units("é", UTF8) == 2


def test_dopt_offset_counts_lines_like_buildkit() -> None:
    text = "FROM a\r\nRUN x\ry\nCMD z"
    assert dopt_offset(text, 2, 5) == text.index("x")
    assert dopt_offset(text, 2, 99) == text.index("\n", text.index("x"))  # lone CR is inside the line
    assert dopt_offset(text, 1, 99) == text.index("\r")
    assert dopt_offset(text, 9, 1) == text.index("CMD")
