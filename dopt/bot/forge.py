"""Pull requests on GitHub and merge requests on GitLab, through their REST APIs.

Only the standard library is used (``urllib``) so that installing dopt for the bot pulls in no
HTTP client. The two providers differ in every detail that matters here, and each difference is
handled in its own class:

* GitHub REST v3: ``Authorization: Bearer``, pages linked with ``Link: <...>; rel="next"``, a
  pull request is found by ``head=owner:branch``, a duplicate is a 422 "A pull request already
  exists", and a repository the token cannot see answers 404 (not 403).
* GitLab v4: ``PRIVATE-TOKEN``, pages numbered with ``X-Next-Page``, the project is named by its
  URL-encoded path (``group%2Fsub%2Fproject``), a merge request is identified by its ``iid``, a
  duplicate is a 409.

Every failure becomes a :class:`ForgeError` whose message says what to do about it; no
``urllib`` exception or traceback reaches the user, and the token never appears in a message.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from dopt import __version__

PAGE_SIZE = 100  # the largest page both APIs allow; a module constant so tests can force paging
MAX_PAGES = 50  # a guard against a server that links pages in a loop
TIMEOUT = 30.0  # seconds per request

GITHUB_API = "https://api.github.com"
GITLAB_API = "https://gitlab.com/api/v4"


class ForgeError(Exception):
    """An API call failed; the message is meant for the user as it is."""


class AlreadyExists(ForgeError):
    """The provider refused to open a second pull/merge request for the same branches."""


@dataclass(frozen=True)
class PullRequest:
    """An open pull request (GitHub) or merge request (GitLab, ``number`` is its ``iid``)."""

    number: int
    url: str
    title: str
    body: str
    source: str
    target: str


@dataclass(frozen=True)
class _Response:
    status: int
    headers: http.client.HTTPMessage | dict[str, str]
    data: Any


@dataclass(frozen=True)
class RemoteLocation:
    """Where a clone URL points: host (with port) and the repository path without ``.git``."""

    scheme: str
    host: str
    path: str


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def parse_remote(url: str) -> RemoteLocation | None:
    """Host and path of an ``https://``, ``ssh://`` or ``user@host:path`` URL; None for local ones."""
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return None
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        path = parts.path
    else:
        match = _SCP_LIKE.match(url)
        if match is None:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/")
    path = path.removesuffix(".git")
    if not path:
        return None
    return RemoteLocation(scheme=url.split("://", 1)[0] if "://" in url else "ssh", host=host, path=path)


def redact(text: str) -> str:
    """``text`` with any ``user:password@`` of a URL removed, for messages that quote git or a URL."""
    return re.sub(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@", r"\g<scheme>***@", text)


class Forge:
    """What the bot needs from a provider; one subclass per provider."""

    provider: ClassVar[str]
    kind: ClassVar[str]  # "pull request" or "merge request", for messages
    ref_prefix: ClassVar[str]  # how the provider writes a request's number: #12 or !12
    token_env: ClassVar[str]

    def __init__(self, base_url: str, token: str, project: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.project = project
        origin = urllib.parse.urlsplit(self.base_url)
        if origin.scheme not in ("http", "https") or not origin.hostname:
            raise ForgeError(f"invalid API base URL '{base_url}' (expected http(s)://host/...)")
        self._origin = (origin.scheme, origin.netloc)

    # -- provider specifics -------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def find_open(self, source: str, target: str) -> PullRequest | None:
        """The open request from ``source`` into ``target``, if there is one."""
        raise NotImplementedError

    def create(self, source: str, target: str, title: str, body: str) -> PullRequest:
        raise NotImplementedError

    def update(self, request: PullRequest, body: str, title: str | None = None) -> PullRequest:
        """Replace the description (and the title, if given: by default a title someone edited stays)."""
        raise NotImplementedError

    def web_host(self) -> str:
        """The host (with port) that serves the repositories behind this API, for git's credentials."""
        raise NotImplementedError

    def git_auth_header(self) -> str:
        """An HTTP header that lets ``git push`` over HTTPS authenticate with the same token."""
        raise NotImplementedError

    def _explain(self, status: int, message: str, headers: Any, method: str, url: str) -> ForgeError:
        raise NotImplementedError

    # -- HTTP ---------------------------------------------------------------------------------

    def _url(self, path: str, query: dict[str, str | int] | None = None) -> str:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def _request(self, method: str, url: str, payload: dict[str, Any] | None = None) -> _Response:
        target = urllib.parse.urlsplit(url)
        if (target.scheme, target.netloc) != self._origin:
            # A pagination link elsewhere must not receive the token.
            raise ForgeError(f"the {self.provider} API linked to another server ({target.netloc}); not following it")
        headers = {
            "Accept": "application/json",
            "User-Agent": f"dopt-bot/{__version__}",
            **self.auth_headers(),
        }
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
                return _Response(response.status, response.headers, _json(raw))
        except urllib.error.HTTPError as error:
            raw = error.read() if error.fp is not None else b""
            message = _message(_json(raw)) or error.reason or ""
            raise self._explain(error.code, str(message), error.headers, method, url) from None
        except urllib.error.URLError as error:
            reason = error.reason
            detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
            raise ForgeError(
                f"cannot reach the {self.provider} API at {self.base_url}: {detail} (check the network and --base-url)"
            ) from None
        except TimeoutError:
            raise ForgeError(
                f"the {self.provider} API at {self.base_url} did not answer within {TIMEOUT:.0f} s"
            ) from None
        except (http.client.HTTPException, OSError) as error:
            raise ForgeError(
                f"the connection to the {self.provider} API at {self.base_url} failed: {error or type(error).__name__}"
            ) from None

    def _pages(self, url: str) -> Iterator[Any]:
        """Items of every page of a list endpoint, following the provider's pagination."""
        for _ in range(MAX_PAGES):
            response = self._request("GET", url)
            if not isinstance(response.data, list):
                raise ForgeError(f"unexpected answer from the {self.provider} API for {url}: expected a list")
            yield from response.data
            next_url = self._next_page(url, response.headers)
            if not next_url:
                return
            url = next_url
        raise ForgeError(f"the {self.provider} API returned more than {MAX_PAGES} pages for {url}")

    def _next_page(self, url: str, headers: Any) -> str | None:
        raise NotImplementedError


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _message(data: Any) -> str:
    """The human part of an error document of either provider."""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    message = data.get("message")
    if isinstance(message, list):
        parts.extend(str(m) for m in message)
    elif isinstance(message, dict):
        parts.extend(f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}"
                     for key, value in message.items())  # fmt: skip
    elif message:
        parts.append(str(message))
    if isinstance(data.get("error"), str):
        parts.append(data["error"])
    for item in data.get("errors") or []:
        if isinstance(item, dict) and item.get("message"):
            parts.append(str(item["message"]))
        elif isinstance(item, dict) and item.get("code"):
            parts.append(f"{item.get('field', '')} {item['code']}".strip())
        elif isinstance(item, str):
            parts.append(item)
    return "; ".join(parts)


def _link_next(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header."""
    if not header:
        return None
    for part in header.split(","):
        match = re.match(r"\s*<([^>]*)>\s*;(.*)$", part)
        if match and re.search(r'\brel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?', match.group(2)):
            return match.group(1)
    return None


class GitHub(Forge):
    """GitHub.com or GitHub Enterprise Server (``https://host/api/v3``)."""

    provider = "GitHub"
    kind = "pull request"
    ref_prefix = "#"
    token_env = "GITHUB_TOKEN"

    def __init__(self, base_url: str, token: str, project: str) -> None:
        super().__init__(base_url, token, project)
        parts = project.split("/")
        if len(parts) != 2 or not all(parts):
            raise ForgeError(f"a GitHub repository is named owner/name, not '{project}'")
        self.owner, self.name = parts

    def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def web_host(self) -> str:
        netloc = urllib.parse.urlsplit(self.base_url).netloc
        return "github.com" if netloc == "api.github.com" else netloc

    def git_auth_header(self) -> str:
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        return f"Authorization: Basic {basic}"

    def _repo(self) -> str:
        return f"/repos/{urllib.parse.quote(self.owner, safe='')}/{urllib.parse.quote(self.name, safe='')}"

    def _pr(self, data: Any) -> PullRequest:
        try:
            return PullRequest(
                number=int(data["number"]),
                url=str(data.get("html_url") or data.get("url") or ""),
                title=str(data.get("title") or ""),
                body=str(data.get("body") or ""),
                source=str(data["head"]["ref"]),
                target=str(data["base"]["ref"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ForgeError("unexpected answer from the GitHub API: not a pull request") from None

    def find_open(self, source: str, target: str) -> PullRequest | None:
        url = self._url(
            f"{self._repo()}/pulls",
            {"head": f"{self.owner}:{source}", "state": "open", "per_page": PAGE_SIZE},
        )
        for item in self._pages(url):
            pr = self._pr(item)
            # The head filter is the server's; the base filter is ours: GitHub allows one open
            # pull request per (head, base) pair, so the same branch may target other bases.
            if pr.source == source and pr.target == target:
                return pr
        return None

    def create(self, source: str, target: str, title: str, body: str) -> PullRequest:
        payload = {"title": title, "head": source, "base": target, "body": body}
        response = self._request("POST", self._url(f"{self._repo()}/pulls"), payload)
        return self._pr(response.data)

    def update(self, request: PullRequest, body: str, title: str | None = None) -> PullRequest:
        payload = {"body": body} if title is None else {"body": body, "title": title}
        response = self._request("PATCH", self._url(f"{self._repo()}/pulls/{request.number}"), payload)
        return self._pr(response.data)

    def _next_page(self, url: str, headers: Any) -> str | None:
        return _link_next(headers.get("Link"))

    def _explain(self, status: int, message: str, headers: Any, method: str, url: str) -> ForgeError:
        where = f"{self.owner}/{self.name}"
        said = f" (GitHub said: {message})" if message else ""
        if status == 401:
            return ForgeError(
                f"GitHub rejected the token (401{': ' + message if message else ''}); set GITHUB_TOKEN or "
                f"pass --token with a token that may open pull requests on {where}"
            )
        if status == 403 or status == 429:
            if headers.get("X-RateLimit-Remaining") == "0" or "rate limit" in message.lower():
                reset = headers.get("X-RateLimit-Reset")
                when = f" (resets at Unix time {reset})" if reset else ""
                return ForgeError(f"GitHub API rate limit exceeded{when}; try again later{said}")
            return ForgeError(
                f"GitHub refused {method} on {where} (403){said}: the token needs 'contents: write' and "
                "'pull-requests: write' (in a workflow: a `permissions:` block granting both)"
            )
        if status == 404:
            return ForgeError(
                f"GitHub repository {where} not found at {self.base_url} (or the token cannot see it: "
                "GitHub answers 404 for private repositories the token has no access to)"
            )
        if status == 422:
            if "already exists" in message.lower():
                return AlreadyExists(f"a pull request already exists on {where}{said}")
            return ForgeError(f"GitHub rejected the pull request on {where} (422 Validation Failed){said}")
        return ForgeError(f"GitHub answered {status} to {method} {_path_of(url)}{said}")


class GitLab(Forge):
    """GitLab.com or a self-managed GitLab (``https://host/api/v4``)."""

    provider = "GitLab"
    kind = "merge request"
    ref_prefix = "!"
    token_env = "GITLAB_TOKEN"

    def __init__(self, base_url: str, token: str, project: str) -> None:
        super().__init__(base_url, token, project)
        if "/" not in project.strip("/"):
            raise ForgeError(f"a GitLab project is named group/name (groups may nest), not '{project}'")
        self.project = project.strip("/")

    def auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token} if self.token else {}

    def web_host(self) -> str:
        return urllib.parse.urlsplit(self.base_url).netloc

    def git_auth_header(self) -> str:
        # GitLab accepts any non-empty user name with a token as the password over HTTPS.
        basic = base64.b64encode(f"oauth2:{self.token}".encode()).decode()
        return f"Authorization: Basic {basic}"

    def _mrs(self) -> str:
        return f"/projects/{urllib.parse.quote(self.project, safe='')}/merge_requests"

    def _mr(self, data: Any) -> PullRequest:
        try:
            return PullRequest(
                number=int(data["iid"]),
                url=str(data.get("web_url") or ""),
                title=str(data.get("title") or ""),
                body=str(data.get("description") or ""),
                source=str(data["source_branch"]),
                target=str(data["target_branch"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ForgeError("unexpected answer from the GitLab API: not a merge request") from None

    def find_open(self, source: str, target: str) -> PullRequest | None:
        url = self._url(self._mrs(), {"source_branch": source, "state": "opened", "per_page": PAGE_SIZE})
        for item in self._pages(url):
            mr = self._mr(item)
            if mr.source == source and mr.target == target:
                return mr
        return None

    def create(self, source: str, target: str, title: str, body: str) -> PullRequest:
        payload = {
            "source_branch": source,
            "target_branch": target,
            "title": title,
            "description": body,
            "remove_source_branch": True,
        }
        return self._mr(self._request("POST", self._url(self._mrs()), payload).data)

    def update(self, request: PullRequest, body: str, title: str | None = None) -> PullRequest:
        payload = {"description": body} if title is None else {"description": body, "title": title}
        response = self._request("PUT", self._url(f"{self._mrs()}/{request.number}"), payload)
        return self._mr(response.data)

    def _next_page(self, url: str, headers: Any) -> str | None:
        following = (headers.get("X-Next-Page") or "").strip()
        if not following:
            return None
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["page"] = following
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    def _explain(self, status: int, message: str, headers: Any, method: str, url: str) -> ForgeError:
        said = f" (GitLab said: {message})" if message else ""
        if status == 401:
            return ForgeError(
                f"GitLab rejected the token (401 Unauthorized); set GITLAB_TOKEN or pass --token with a "
                f"token that has the 'api' scope on {self.project}"
            )
        if status == 403:
            return ForgeError(
                f"GitLab refused {method} on {self.project} (403 Forbidden){said}: the token needs the 'api' "
                "scope and at least the Developer role"
            )
        if status == 404:
            return ForgeError(
                f"GitLab project {self.project} not found at {self.base_url} (or the token cannot see it){said}"
            )
        if status == 409:
            return AlreadyExists(f"a merge request already exists on {self.project}{said}")
        if status == 429:
            return ForgeError(f"GitLab API rate limit exceeded; try again later{said}")
        return ForgeError(f"GitLab answered {status} to {method} {_path_of(url)}{said}")


def _path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


PROVIDERS: dict[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab}


def default_base_url(provider: str, remote: RemoteLocation | None) -> str:
    """The API of the server the clone URL points at: the public service, Enterprise or self-managed.

    An SSH remote names the git host, whose web API is assumed on HTTPS port 443; when that guess
    is wrong, ``base_url`` must be given.
    """
    public = {"github": ("github.com", GITHUB_API), "gitlab": ("gitlab.com", GITLAB_API)}[provider]
    if remote is None or remote.host.split(":")[0] in (public[0], f"www.{public[0]}"):
        return public[1]
    if remote.scheme in ("https", "http"):
        origin = f"{remote.scheme}://{remote.host}"
    else:
        origin = f"https://{remote.host.split(':')[0]}"
    return f"{origin}/api/v3" if provider == "github" else f"{origin}/api/v4"


def make_forge(provider: str, *, base_url: str, token: str, project: str) -> Forge:
    """The client for ``provider`` ("github" or "gitlab")."""
    try:
        cls = PROVIDERS[provider.lower()]
    except KeyError:
        raise ForgeError(f"unknown provider '{provider}' (choose github or gitlab)") from None
    return cls(base_url, token, project)
