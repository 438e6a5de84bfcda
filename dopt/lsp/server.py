"""The dopt language server: findings as diagnostics, fixes as code actions, safe fixes as formatting.

It speaks LSP on standard input/output through pygls. Each open Dockerfile is analysed with the
same engine and settings as ``dopt check`` (the nearest ``dopt.toml`` / ``pyproject.toml`` of the
document, read again on every analysis so that an edited configuration takes effect at once):

* diagnostics on open, change and save, one per finding, and one error at the position of a
  syntax error instead of any findings (the buffer is never touched);
* a quick fix per finding that has a fix, unsafe ones marked "(unsafe)" in their title, and a
  ``source.fixAll.dopt`` action applying the safe fixes through the verifying pipeline;
* formatting: the result of the safe fixes, as one whole-document edit;
* hover: the documentation of the rules reporting on the instruction under the cursor.

Documents are synchronised in full: Dockerfiles are small, and it keeps the server's copy exact
whatever line breaks the buffer uses. The dopt engine is imported on first use so that the server
answers ``initialize`` quickly.
"""

from __future__ import annotations

import enum
import logging
import sys
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from dopt import __version__
from dopt.lsp.positions import LineIndex, dopt_offset

if TYPE_CHECKING:
    from dopt.optimizer.config import Settings
    from dopt.optimizer.rules import Finding, Rule
    from dopt.optimizer.syntax import Document

SOURCE = "dopt"
FIX_ALL_KIND = "source.fixAll.dopt"
FIX_ALL_TITLE = "Fix all safe problems"
CONFIG_FILES = ("pyproject.toml", "dopt.toml")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """Why a document could not be checked (syntax, configuration, internal error): one diagnostic."""

    message: str
    start: int
    end: int


@dataclass
class Analysis:
    """One document's text with its findings (or the problem that prevented them), and how to map places."""

    text: str
    index: LineIndex
    path: str
    context_dir: Path | None
    rules: list[Rule] = field(default_factory=list)
    settings: Settings | None = None
    findings: list[Finding] = field(default_factory=list)
    problem: Problem | None = None

    def range(self, start: int, end: int) -> types.Range:
        (sl, sc), (el, ec) = self.index.position(start), self.index.position(max(start, end))
        return types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec))

    def whole_range(self) -> types.Range:
        line, character = self.index.end_position()
        return types.Range(
            start=types.Position(line=0, character=0), end=types.Position(line=line, character=character)
        )

    @cached_property
    def document(self) -> Document | None:
        """The parsed text (None when it does not parse), for hover and for checking single fixes."""
        from dopt.optimizer.syntax import DockerfileSyntaxError, parse

        try:
            return parse(self.text)
        except DockerfileSyntaxError:
            return None

    @cached_property
    def fixed_text(self) -> str | None:
        """The text after every safe fix, verified by the pipeline; None when it cannot be computed."""
        from dopt.optimizer.pipeline import run

        if self.problem is not None or self.settings is None:
            return None
        try:
            result = run(self.text, self.rules, fix=True, unsafe_fixes=False, path=self.path,
                         context_dir=self.context_dir, options=self.settings.rule_options)  # fmt: skip
        except Exception:
            log.exception("fixing %s failed", self.path)
            return None
        return result.output


def analyse(text: str, fs_path: Path | None, encoding: str = "utf-16") -> Analysis:
    """Check ``text`` as the file at ``fs_path`` (None: an unsaved buffer, default settings).

    Never raises: a syntax error, a broken configuration or an unexpected failure inside a rule
    each becomes the analysis' :attr:`Analysis.problem`, shown to the user as one diagnostic.
    """
    from dopt.optimizer.config import ConfigError, Settings, settings_for
    from dopt.optimizer.pipeline import run
    from dopt.optimizer.syntax import DockerfileSyntaxError
    from dopt.transforms import all_rules

    analysis = Analysis(
        text=text,
        index=LineIndex(text, encoding),
        path=str(fs_path) if fs_path else "Dockerfile",
        context_dir=fs_path.parent if fs_path else None,
    )
    try:
        settings = settings_for(fs_path) if fs_path else Settings()
    except ConfigError as err:
        analysis.problem = Problem(f"configuration error: {err}", 0, 0)
        return analysis
    analysis.settings = settings
    try:
        analysis.rules = settings.rules_for(all_rules(), analysis.path)
        result = run(text, analysis.rules, fix=False, path=analysis.path, context_dir=analysis.context_dir,
                     options=settings.rule_options)  # fmt: skip
    except DockerfileSyntaxError as err:
        start = dopt_offset(text, err.line, err.column)
        line, _ = analysis.index.position(start)
        analysis.problem = Problem(f"syntax error: {err.message}", start, analysis.index.line_end(line))
        return analysis
    except Exception as err:  # a bug in a rule must not take the editor's server down
        log.exception("checking %s failed", analysis.path)
        analysis.problem = Problem(f"internal error ({type(err).__name__}: {err}); please report it", 0, 0)
        return analysis
    analysis.findings = result.remaining
    return analysis


def _diagnostic(analysis: Analysis, finding: Finding) -> types.Diagnostic:
    return types.Diagnostic(
        range=analysis.range(finding.start, finding.end),
        message=finding.message,
        severity=types.DiagnosticSeverity.Warning,
        code=finding.code,
        source=SOURCE,
    )


def diagnostics(analysis: Analysis) -> list[types.Diagnostic]:
    """What the editor shows: one warning per finding, or one error for a problem."""
    if analysis.problem is not None:
        p = analysis.problem
        return [
            types.Diagnostic(
                range=analysis.range(p.start, p.end),
                message=p.message,
                severity=types.DiagnosticSeverity.Error,
                source=SOURCE,
            )
        ]
    return [_diagnostic(analysis, f) for f in analysis.findings]


def _fix_applies(analysis: Analysis, finding: Finding, rule: Rule | None) -> bool:
    """Whether a finding's fix, applied alone, passes the checks the pipeline makes on every rewrite.

    A quick fix does not go through the pipeline, so the pipeline's verification is run on it
    before the fix is offered.
    """
    from dopt.optimizer.pipeline import verify_fix

    if analysis.document is None:
        return False
    problem, _ = verify_fix(analysis.document, finding, rule)
    return problem is None


def _plain(value: object) -> str:
    """The wire value of an lsprotocol enum member (``str()`` of one gives its Python name)."""
    return str(value.value if isinstance(value, enum.Enum) else value)


def _kind_wanted(kind: str, only: list[str] | None) -> bool:
    """LSP kinds are hierarchical: asking for ``source.fixAll`` includes ``source.fixAll.dopt``."""
    return only is None or any(kind == k or kind.startswith(f"{k}.") for k in only)


class DoptLanguageServer(LanguageServer):
    """A pygls server that keeps the latest analysis of every open document."""

    def __init__(self) -> None:
        super().__init__("dopt", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.analyses: dict[str, Analysis] = {}
        self.shutdown_requested = False

    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text, recomputed only when the text has changed."""
        doc = self.workspace.get_text_document(uri)
        encoding = _plain(self.workspace.position_encoding or "utf-16")
        cached = self.analyses.get(uri)
        if cached is not None and cached.text == doc.source and cached.index.encoding == encoding:
            return cached
        path = to_fs_path(uri) if uri.startswith("file:") else None
        result = analyse(doc.source, Path(path) if path else None, encoding)
        self.analyses[uri] = result
        return result

    def publish(self, uri: str, *, refresh: bool = False) -> None:
        """Analyse a document (again, with ``refresh``: its configuration may have changed) and publish."""
        if refresh:
            self.analyses.pop(uri, None)
        doc = self.workspace.get_text_document(uri)
        try:
            found = diagnostics(self.analysis(uri))
        except Exception:  # never let one bad document stop the server
            log.exception("analysing %s failed", uri)
            self.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Error, message=f"dopt: analysing {uri} failed:\n{traceback.format_exc()}"
                )
            )
            return
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=doc.version)
        )

    def workspace_edit(self, uri: str, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
        """Edits for one document, tied to its version when the client supports versioned edits."""
        caps = self.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        if not versioned:
            return types.WorkspaceEdit(changes={uri: edits})
        version = self.workspace.get_text_document(uri).version
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)])


def create_server() -> DoptLanguageServer:
    """A server with every feature registered (a factory, so importing this module has no effects)."""
    server = DoptLanguageServer()

    @server.feature(types.INITIALIZED)
    def initialized(ls: DoptLanguageServer, params: types.InitializedParams) -> None:
        # Re-check open documents when a configuration file changes, if the client can watch files.
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if watched and watched.dynamic_registration:
            options = types.DidChangeWatchedFilesRegistrationOptions(
                watchers=[types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILES]
            )
            ls.client_register_capability(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="dopt-config-files",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=options,
                        )
                    ]
                )
            )

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: DoptLanguageServer, params: None) -> None:
        ls.shutdown_requested = True

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def config_changed(ls: DoptLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
        for uri in list(ls.workspace.text_documents):
            ls.publish(uri, refresh=True)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DoptLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri, refresh=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DoptLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: DoptLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri, refresh=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: DoptLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.analyses.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND]),
    )
    def code_action(ls: DoptLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        from dopt.optimizer.rules import FixSafety
        from dopt.transforms import all_rules

        uri = params.text_document.uri
        analysis = ls.analysis(uri)
        if analysis.problem is not None:
            return None
        only = [_plain(k) for k in params.context.only] if params.context.only else None
        actions: list[types.CodeAction] = []
        if _kind_wanted(_plain(types.CodeActionKind.QuickFix), only):
            rules = {rule.code: rule for rule in all_rules()}
            first = analysis.index.offset(params.range.start.line, params.range.start.character)
            last = analysis.index.offset(params.range.end.line, params.range.end.character)
            asked = {(str(d.code), d.range.start.line, d.range.start.character) for d in params.context.diagnostics}
            for finding in analysis.findings:
                fix = finding.fix
                if fix is None:
                    continue
                diag = _diagnostic(analysis, finding)
                at_cursor = finding.start <= last and first <= finding.end
                if not at_cursor and (finding.code, diag.range.start.line, diag.range.start.character) not in asked:
                    continue
                if not _fix_applies(analysis, finding, rules.get(finding.code)):
                    continue
                safe = fix.safety is FixSafety.SAFE
                edits = [types.TextEdit(range=analysis.range(e.start, e.end), new_text=e.text) for e in fix.edits]
                actions.append(
                    types.CodeAction(
                        title=f"{finding.code}: {fix.description}" + ("" if safe else " (unsafe)"),
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diag],
                        is_preferred=safe,
                        edit=ls.workspace_edit(uri, edits),
                    )
                )
        if _kind_wanted(FIX_ALL_KIND, only):
            fixed = analysis.fixed_text
            if fixed is not None and fixed != analysis.text:
                edit = types.TextEdit(range=analysis.whole_range(), new_text=fixed)
                actions.append(
                    types.CodeAction(title=FIX_ALL_TITLE, kind=FIX_ALL_KIND, edit=ls.workspace_edit(uri, [edit]))
                )
        return actions or None

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: DoptLanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
        analysis = ls.analysis(params.text_document.uri)
        fixed = analysis.fixed_text
        if fixed is None or fixed == analysis.text:
            return None
        return [types.TextEdit(range=analysis.whole_range(), new_text=fixed)]

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: DoptLanguageServer, params: types.HoverParams) -> types.Hover | None:
        from dopt.transforms import all_rules

        analysis = ls.analysis(params.text_document.uri)
        doc = analysis.document
        if analysis.problem is not None or doc is None:
            return None
        offset = analysis.index.offset(params.position.line, params.position.character)
        ins = next((i for i in doc.instructions if i.start <= offset < i.end), None)
        if ins is None:
            return None
        here = [f for f in analysis.findings if ins.start <= f.start < ins.end]
        if not here:
            return None
        rules = {rule.code: rule for rule in all_rules()}
        parts = []
        for finding in here:
            rule = rules.get(finding.code)
            body = rule.documentation() if rule else ""
            parts.append(f"**{finding.code}** {finding.message}\n\n{body}".rstrip())
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
            range=analysis.range(here[0].start, here[0].end),
        )

    return server


def serve() -> None:
    """Run the language server on standard input/output until the client says ``exit``.

    Standard output carries the protocol, so anything else that would print there is sent to
    standard error instead. The exit status follows the specification: 0 after ``shutdown`` then
    ``exit``, 1 when the client exits (or disappears) without asking for a shutdown first.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="dopt lsp: %(levelname)s: %(message)s")
    server = create_server()
    server.start_io(stdin, stdout)
    if not server.shutdown_requested:
        sys.exit(1)
