"""A local GitHub + GitLab REST server for the bot tests, following the providers' documentation.

Served on 127.0.0.1 from a thread; GitHub's API under ``/api/v3`` (the GitHub Enterprise layout),
GitLab's under ``/api/v4``. Each project is backed by a real bare repository, so that opening a
request for a branch that was never pushed fails the way the real services fail.

GitHub (REST v3, "Pulls" API):

* ``Authorization: Bearer <token>`` or ``token <token>``; none → 401 "Requires authentication",
  wrong → 401 "Bad credentials"; unknown repository → 404 "Not Found".
* ``GET /repos/{owner}/{repo}/pulls`` with ``state`` (open|closed|all, default open), ``head``
  (``owner:branch``), ``base``, ``per_page`` (default 30, max 100) and ``page``; newest first;
  ``Link`` header with ``first``/``prev``/``next``/``last``.
* ``POST /repos/{owner}/{repo}/pulls`` → 201 and a ``Location``; 422 "Validation Failed" for a
  missing field, a head or base branch that does not exist, or "A pull request already exists for
  owner:branch.".
* ``PATCH /repos/{owner}/{repo}/pulls/{number}`` → 200; unknown number → 404.

GitLab (v4, "Merge requests" API):

* ``PRIVATE-TOKEN: <token>`` or ``Authorization: Bearer <token>``; else 401 "401 Unauthorized";
  unknown project → 404 "404 Project Not Found".
* project ids are numeric or URL-encoded paths (``acme%2Fapp``).
* ``GET /projects/{id}/merge_requests`` with ``state`` (opened|closed|merged|all), ``source_branch``,
  ``target_branch``, ``per_page`` (default 20, max 100), ``page``; ``X-Page``, ``X-Per-Page``,
  ``X-Total``, ``X-Total-Pages``, ``X-Next-Page``/``X-Prev-Page`` (empty when none) and ``Link``.
* ``POST /projects/{id}/merge_requests`` → 201; 400 for a missing parameter, 409 "Another open merge
  request already exists for this source branch: !iid", 422 for a branch that does not exist.
* ``PUT /projects/{id}/merge_requests/{iid}`` → 200; unknown iid → 404 "404 Not found".
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

GITHUB_DOCS = "https://docs.github.com/rest/pulls/pulls"


@dataclass
class Logged:
    method: str
    path: str  # raw, still URL-encoded
    query: dict[str, str]
    body: Any
    provider: str


@dataclass
class State:
    token: str
    repos: dict[str, Path]  # "owner/name" -> bare repository
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # GitHub, per repository
    mrs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # GitLab, per project
    log: list[Logged] = field(default_factory=list)
    hide_from_next_list: int = 0  # answer this many list calls with an empty page (a race with another run)
    forced: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)  # canned answers, first first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def branch_exists(self, project: str, branch: str) -> bool:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=self.repos[project],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def branch_sha(self, project: str, branch: str) -> str:
        return subprocess.run(
            ["git", "rev-parse", f"refs/heads/{branch}"], cwd=self.repos[project], capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    server: ForgeServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        raw = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return "<invalid json>"

    def _base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        body = self._body() if method in ("POST", "PATCH", "PUT") else None
        state = self.server.state
        provider = (
            "github" if parts.path.startswith("/api/v3/") else "gitlab" if parts.path.startswith("/api/v4/") else ""
        )
        with state.lock:
            state.log.append(Logged(method, parts.path, query, body, provider))
        if state.forced:
            status, data, headers = state.forced.pop(0)
            return self._send(status, data, headers)
        if provider == "github":
            self._github(method, parts.path[len("/api/v3") :], query, body)
        elif provider == "gitlab":
            self._gitlab(method, parts.path[len("/api/v4") :], query, body)
        else:
            self._send(404, {"message": "Not Found"})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- GitHub ---------------------------------------------------------------------------------

    def _github_error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        data: dict[str, Any] = {"message": message, "documentation_url": GITHUB_DOCS, "status": str(status)}
        if errors is not None:
            data["errors"] = errors
        self._send(status, data)

    def _github(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        state = self.server.state
        auth = self.headers.get("Authorization") or ""
        if not auth:
            return self._github_error(401, "Requires authentication")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token != state.token:
            return self._github_error(401, "Bad credentials")
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if len(segments) < 4 or segments[0] != "repos" or segments[3] != "pulls":
            return self._github_error(404, "Not Found")
        project = f"{segments[1]}/{segments[2]}"
        if project not in state.repos:
            return self._github_error(404, "Not Found")
        pulls = state.pulls.setdefault(project, [])
        if len(segments) == 4 and method == "GET":
            return self._github_list(project, pulls, query)
        if len(segments) == 4 and method == "POST":
            return self._github_create(project, pulls, body)
        if len(segments) == 5 and method == "PATCH" and segments[4].isdigit():
            for pr in pulls:
                if pr["number"] == int(segments[4]):
                    for key in ("title", "body", "state"):
                        if isinstance(body, dict) and key in body:
                            pr[key] = body[key]
                    if isinstance(body, dict) and "base" in body:
                        pr["base"]["ref"] = body["base"]
                    pr["updated_at"] = "2024-01-02T00:00:00Z"
                    return self._send(200, pr)
            return self._github_error(404, "Not Found")
        return self._github_error(404, "Not Found")

    def _github_list(self, project: str, pulls: list[dict[str, Any]], query: dict[str, str]) -> None:
        state = self.server.state
        wanted_state = query.get("state", "open")
        items = [p for p in pulls if wanted_state == "all" or p["state"] == wanted_state]
        if "head" in query:
            # GitHub: "Filter pulls by head user or head organization and branch name in the format of
            # user:ref-name or organization:ref-name."
            items = [p for p in items if p["head"]["label"] == query["head"]]
        if "base" in query:
            items = [p for p in items if p["base"]["ref"] == query["base"]]
        items = sorted(items, key=lambda p: p["number"], reverse=True)
        if state.hide_from_next_list:
            state.hide_from_next_list -= 1
            items = []
        per_page = min(int(query.get("per_page", 30)), 100)
        page = max(int(query.get("page", 1)), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(number: int, rel: str) -> str:
            return f'<{self._base()}/api/v3/repos/{project}/pulls?{urlencode({**query, "page": number})}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        self._send(200, chunk, {"Link": ", ".join(links)} if links else None)

    def _github_create(self, project: str, pulls: list[dict[str, Any]], body: Any) -> None:
        state = self.server.state
        if not isinstance(body, dict):
            return self._github_error(400, "Problems parsing JSON")
        missing = [f for f in ("head", "base") if not body.get(f)]
        if not body.get("title") and not body.get("issue"):
            missing.insert(0, "title")
        if missing:
            return self._github_error(
                422, "Validation Failed",
                [{"resource": "PullRequest", "field": f, "code": "missing_field"} for f in missing],
            )  # fmt: skip
        owner = project.split("/")[0]
        head = str(body["head"])
        head_ref = head.split(":", 1)[1] if ":" in head else head
        base = str(body["base"])
        invalid = [f for f, ref in (("base", base), ("head", head_ref)) if not state.branch_exists(project, ref)]
        if invalid:
            return self._github_error(
                422, "Validation Failed",
                [{"resource": "PullRequest", "field": f, "code": "invalid"} for f in invalid],
            )  # fmt: skip
        label = f"{owner}:{head_ref}"
        if any(p["state"] == "open" and p["head"]["label"] == label and p["base"]["ref"] == base for p in pulls):
            exists = f"A pull request already exists for {label}."
            return self._github_error(
                422, "Validation Failed", [{"resource": "PullRequest", "code": "custom", "message": exists}]
            )
        if state.branch_sha(project, head_ref) == state.branch_sha(project, base):
            return self._github_error(
                422, "Validation Failed",
                [{"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head_ref}"}],
            )  # fmt: skip
        pr = self.server.new_pull(project, head_ref, base, str(body["title"]), body.get("body"))
        pr["head"]["sha"] = state.branch_sha(project, head_ref)
        self._send(201, pr, {"Location": pr["url"]})

    # -- GitLab ---------------------------------------------------------------------------------

    def _gitlab(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        state = self.server.state
        token = self.headers.get("PRIVATE-TOKEN")
        if token is None and (self.headers.get("Authorization") or "").lower().startswith("bearer "):
            token = (self.headers.get("Authorization") or "")[7:]
        if token != state.token:
            return self._send(401, {"message": "401 Unauthorized"})
        raw = path.strip("/").split("/")  # the project id stays encoded: "acme%2Fapp" is one segment
        if len(raw) < 3 or raw[0] != "projects" or raw[2] != "merge_requests":
            return self._send(404, {"error": "404 Not Found"})
        ident = unquote(raw[1])
        project = self.server.project_by_id(ident)
        if project is None:
            return self._send(404, {"message": "404 Project Not Found"})
        mrs = state.mrs.setdefault(project, [])
        if len(raw) == 3 and method == "GET":
            return self._gitlab_list(raw[1], mrs, query)
        if len(raw) == 3 and method == "POST":
            return self._gitlab_create(project, mrs, body)
        if len(raw) == 4 and method == "PUT" and raw[3].isdigit():
            for mr in mrs:
                if mr["iid"] == int(raw[3]):
                    for key in ("title", "description", "target_branch"):
                        if isinstance(body, dict) and key in body:
                            mr[key] = body[key]
                    if isinstance(body, dict) and body.get("state_event") == "close":
                        mr["state"] = "closed"
                    return self._send(200, mr)
            return self._send(404, {"message": "404 Not found"})
        return self._send(404, {"error": "404 Not Found"})

    def _gitlab_list(self, encoded_id: str, mrs: list[dict[str, Any]], query: dict[str, str]) -> None:
        state = self.server.state
        wanted = query.get("state", "all")
        items = [m for m in mrs if wanted == "all" or m["state"] == wanted]
        for key in ("source_branch", "target_branch"):
            if key in query:
                items = [m for m in items if m[key] == query[key]]
        items = sorted(items, key=lambda m: m["iid"], reverse=True)
        if state.hide_from_next_list:
            state.hide_from_next_list -= 1
            items = []
        per_page = min(int(query.get("per_page", 20)), 100)
        page = max(int(query.get("page", 1)), 1)
        total_pages = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int, rel: str) -> str:
            target = f"{self._base()}/api/v4/projects/{encoded_id}/merge_requests"
            return f'<{target}?{urlencode({**query, "page": number})}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < total_pages else []
        links += [link(page - 1, "prev")] if page > 1 else []
        links += [link(1, "first"), link(total_pages, "last")]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        self._send(200, chunk, headers)

    def _gitlab_create(self, project: str, mrs: list[dict[str, Any]], body: Any) -> None:
        state = self.server.state
        if not isinstance(body, dict):
            return self._send(400, {"error": "source_branch is missing, target_branch is missing, title is missing"})
        missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
        if missing:
            return self._send(400, {"error": ", ".join(f"{k} is missing" for k in missing)})
        source, target = str(body["source_branch"]), str(body["target_branch"])
        for branch in (source, target):
            if not state.branch_exists(project, branch):
                kind = "Source" if branch == source else "Target"
                return self._send(422, {"message": [f'{kind} branch "{branch}" does not exist']})
        for mr in mrs:
            if mr["state"] == "opened" and mr["source_branch"] == source and mr["target_branch"] == target:
                return self._send(
                    409,
                    {"message": [f"Another open merge request already exists for this source branch: !{mr['iid']}"]},
                )
        self._send(201, self.server.new_mr(project, source, target, str(body["title"]), body.get("description")))


class ForgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def github_url(self) -> str:
        return f"{self.root}/api/v3"

    @property
    def gitlab_url(self) -> str:
        return f"{self.root}/api/v4"

    def project_by_id(self, ident: str) -> str | None:
        projects = sorted(self.state.repos)
        if ident.isdigit():
            index = int(ident) - 1
            return projects[index] if 0 <= index < len(projects) else None
        return ident if ident in self.state.repos else None

    def new_pull(self, project: str, head: str, base: str, title: str, body: str | None, state: str = "open") -> dict:
        pulls = self.state.pulls.setdefault(project, [])
        number = max((p["number"] for p in pulls), default=0) + 1
        owner = project.split("/")[0]
        pr = {
            "id": 1000 + number,
            "number": number,
            "state": state,
            "title": title,
            "body": body,
            "url": f"{self.github_url}/repos/{project}/pulls/{number}",
            "html_url": f"{self.root}/{project}/pull/{number}",
            "user": {"login": "dopt-bot"},
            "head": {"ref": head, "label": f"{owner}:{head}", "sha": ""},
            "base": {"ref": base, "label": f"{owner}:{base}"},
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }
        pulls.append(pr)
        return pr

    def new_mr(self, project: str, source: str, target: str, title: str, description: str | None,
               state: str = "opened") -> dict:  # fmt: skip
        mrs = self.state.mrs.setdefault(project, [])
        iid = max((m["iid"] for m in mrs), default=0) + 1
        mr = {
            "id": 5000 + iid,
            "iid": iid,
            "project_id": sorted(self.state.repos).index(project) + 1,
            "title": title,
            "description": description,
            "state": state,
            "source_branch": source,
            "target_branch": target,
            "web_url": f"{self.root}/{project}/-/merge_requests/{iid}",
        }
        mrs.append(mr)
        return mr

    def requests(self, provider: str | None = None, method: str | None = None) -> list[Logged]:
        return [
            r for r in self.state.log
            if (provider is None or r.provider == provider) and (method is None or r.method == method)
        ]  # fmt: skip

    def writes(self) -> list[Logged]:
        return [r for r in self.state.log if r.method != "GET"]

    def open_pulls(self, project: str) -> list[dict[str, Any]]:
        return [p for p in self.state.pulls.get(project, []) if p["state"] == "open"]

    def open_mrs(self, project: str) -> list[dict[str, Any]]:
        return [m for m in self.state.mrs.get(project, []) if m["state"] == "opened"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def serve(token: str, repos: dict[str, Path]) -> Iterator[ForgeServer]:
    server = ForgeServer(State(token=token, repos=repos))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def encoded(project: str) -> str:
    return quote(project, safe="")
