"""A local stand-in for the part of GitHub's REST API that remediate uses: repository, pulls, issues, labels,
issue comments and reactions, review comments, collaborator permissions, commits and commit statuses,
deployments and their statuses. In-memory state, request journal, and every request checked against GitHub's
OpenAPI description (violations are collected for the tests to assert on).

Answers have GitHub's shapes (the fields its OpenAPI description requires, so PyGithub parses them), lists
are paginated as GitHub paginates them (`per_page` default 30, max 100, `Link` header) and ordered as GitHub
orders them: pulls newest first by default, issue and review comments oldest first, commit statuses,
deployments and deployment statuses newest first.

Test-facing state (all plain data, edit it freely between runs):
    pulls, issues           the JSON GitHub would answer; issues include each pull's issue (key `_pr`)
    comments                issue number -> comment bodies, oldest first (posted and seeded alike)
    comment_records         comment id -> the comment's JSON (issue number under `_issue`)
    reactions               [{"comment_id": id, "content": c}] or [{"issue_number": n, "content": c}], in order
    review_comments         pull number -> review comments' JSON, oldest first
    permissions             login -> role: admin, maintain, write, triage, read (anyone else: none)
    statuses                sha -> commit statuses' JSON, oldest first (the API answers newest first)
    deployments             deployments' JSON, oldest first
    deployment_statuses     deployment id -> statuses' JSON, oldest first
    origin                  a bare repository to resolve refs and read commits from (None: any 40-hex sha exists)
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import subprocess
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from peers.loopback import QuietHandler, base_url, serve, stop
from peers.openapi import OpenAPIChecker

WEB = "https://github.example"
ACTOR = "github-actions[bot]"  # who a workflow's GITHUB_TOKEN acts as
ROLES = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}
_RANKS = ["read", "triage", "write", "maintain", "admin"]
REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
_SHA = re.compile(r"[0-9a-f]{40}")
_PRIVATE = {"_pr", "_issue"}  # the stub's own keys in the JSON it keeps, never answered
_REPO_LINKS = {
    "forks": "forks", "keys": "keys{/key_id}", "collaborators": "collaborators{/collaborator}", "teams": "teams",
    "hooks": "hooks", "issue_events": "issues/events{/number}", "events": "events", "assignees": "assignees{/user}",
    "branches": "branches{/branch}", "tags": "tags", "blobs": "git/blobs{/sha}", "git_tags": "git/tags{/sha}",
    "git_refs": "git/refs{/sha}", "trees": "git/trees{/sha}", "statuses": "statuses/{sha}", "languages": "languages",
    "stargazers": "stargazers", "contributors": "contributors", "subscribers": "subscribers",
    "subscription": "subscription", "commits": "commits{/sha}", "git_commits": "git/commits{/sha}",
    "comments": "comments{/number}", "issue_comment": "issues/comments{/number}", "contents": "contents/{+path}",
    "compare": "compare/{base}...{head}", "merges": "merges", "archive": "{archive_format}{/ref}",
    "downloads": "downloads", "issues": "issues{/number}", "pulls": "pulls{/number}",
    "milestones": "milestones{/number}", "notifications": "notifications{?since,all,participating}",
    "labels": "labels{/name}", "releases": "releases{/id}", "deployments": "deployments",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(kind: str, number: int) -> str:
    """A global node id in GitHub's legacy form: base64 of "0<length of kind>:<kind><id>"."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def fake_sha(text: str) -> str:
    """A commit sha for a ref no repository backs, the same on every run."""
    return hashlib.sha1(f"commit:{text}".encode()).hexdigest()


def user_json(login: str, user_type: str = "User", api: str = "https://api.github.com",
              web: str = WEB) -> dict[str, Any]:
    """A GitHub user (`simple-user`): `user_type` is User, Bot or Organization; bots' logins end in `[bot]`."""
    uid = int(hashlib.sha1(login.encode()).hexdigest()[:8], 16) % 10**8
    url = f"{api}/users/{login.replace('[', '%5B').replace(']', '%5D')}"
    kind = user_type if user_type in ("Bot", "Organization") else "User"
    return {"login": login, "id": uid, "node_id": _node_id(kind, uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "", "url": url,
            "html_url": f"{web}/{login}", "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events", "type": user_type, "site_admin": False}


def _reactions_json(url: str) -> dict[str, Any]:
    return {"url": url, "total_count": 0, **dict.fromkeys(sorted(REACTIONS), 0)}


class GitHubStub:
    def __init__(self, owner: str = "acme", repo: str = "user-service",
                 token: str = "ghs_testtoken000000000000000000000000",
                 default_branch: str = "main", checker: OpenAPIChecker | None = None) -> None:
        self.owner, self.repo, self.token, self.default_branch = owner, repo, token, default_branch
        self.checker = checker
        self.actor = ACTOR
        self.origin: Path | None = None
        self.pulls: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []  # issues and PRs share numbers, as on GitHub
        self.labels: dict[str, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self.comment_records: dict[int, dict[str, Any]] = {}
        self.reactions: list[dict[str, Any]] = []
        self.review_comments: dict[int, list[dict[str, Any]]] = {}
        self.permissions: dict[str, str] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.deployments: list[dict[str, Any]] = []
        self.deployment_statuses: dict[int, list[dict[str, Any]]] = {}
        self.journal: list[dict[str, Any]] = []
        self.violations: list[str] = []
        # "POST /pulls" -> status, or (status, message) or (status, message, headers), answered once
        self.fail_next: dict[str, Any] = {}
        self.extra_headers: dict[str, str] = {}  # headers of the next scripted failure
        self.garbage_next: set[str] = set()  # "POST /pulls" -> answer 201 with a body that is not JSON, once
        self._reaction_json: list[dict[str, Any]] = []
        # Each kind of object has its own id space, far from issue numbers: an id used as a number finds nothing.
        self._ids = {kind: itertools.count(base) for kind, base in (
            ("comment", 1_100_000_001), ("review_comment", 1_200_000_001), ("reaction", 1_300_000_001),
            ("status", 1_400_000_001), ("deployment", 1_500_000_001), ("deployment_status", 1_600_000_001),
            ("review", 1_700_000_001))}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def api_url(self) -> str:
        assert self._server
        return base_url(self._server)

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.repo}"

    def _web_url(self) -> str:
        return f"{WEB}/{self.owner}/{self.repo}"

    def _user(self, login: str, user_type: str = "User") -> dict[str, Any]:
        return user_json(login, user_type, self.api_url if self._server else "https://api.github.com")

    def _actor(self) -> dict[str, Any]:
        return self._user(self.actor, "Bot" if self.actor.endswith("[bot]") else "User")

    def start(self) -> GitHubStub:
        stub = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                url = urlparse(self.path)
                raw = self.read_body()
                body = json.loads(raw) if raw else None
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with stub._lock:
                    stub.journal.append({"method": self.command, "path": url.path, "query": query, "body": body})
                    if stub.checker:
                        stub.violations += stub.checker.check(self.command, url.path, query, body)
                    if self.headers.get("Authorization") not in (f"token {stub.token}", f"Bearer {stub.token}"):
                        return self.send_json(401, {"message": "Bad credentials"})
                    short = stub.short(self.command, url.path)
                    if short in stub.garbage_next:
                        stub.garbage_next.discard(short)
                        return self.send_bytes(201, b"<html>proxy error</html>")
                    status, payload = stub.route(self.command, url.path, query, body)
                    if status >= 400 and isinstance(payload, dict):
                        payload = {**payload, "documentation_url": "https://docs.github.com/rest",
                                   "status": str(status)}
                    headers, stub.extra_headers = stub.extra_headers, {}
                self.send_bytes(status, json.dumps(payload).encode() if payload is not None else b"",
                                headers=headers)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle  # noqa: N815

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        stop(self._server)

    # --------------------------------------------------------------------------------------
    def short(self, method: str, path: str) -> str:
        """The key for scripted failures: `POST /pulls`, `PATCH /issues/N`, `POST /issues/comments/N/reactions`,
        `GET /collaborators/octocat/permission`, `POST /statuses/SHA`, `GET /commits/SHA/statuses`,
        `GET /commits/main`. The path is decoded; a segment of digits is N, a 40-hex segment is SHA."""
        rest = unquote(path.removeprefix(f"/repos/{self.owner}/{self.repo}"))
        rest = re.sub(r"/[0-9a-f]{40}(?=/|$)", "/SHA", rest)
        return f"{method} " + (re.sub(r"/\d+(?=/|$)", "/N", rest) or "/")

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        prefix = f"/repos/{self.owner}/{self.repo}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = unquote(path[len(prefix):])
        short = self.short(method, path)
        if short in self.fail_next:
            failure = self.fail_next.pop(short)
            failure = failure if isinstance(failure, tuple) else (failure, "scripted failure")
            if len(failure) == 3:
                self.extra_headers = dict(failure[2])
            return failure[0], {"message": failure[1]}
        body = body if body is not None else {}
        page = lambda items: (200, self._paged(path, query, items))  # noqa: E731
        routes = [
            ("GET", r"", lambda m: (200, self._repo_json())),
            ("GET", r"/pulls", lambda m: page(self._list_pulls(query))),
            ("POST", r"/pulls", lambda m: self._create_pull(body)),
            ("GET", r"/pulls/(\d+)", lambda m: self._get(self.pulls, int(m[1]))),
            ("PATCH", r"/pulls/(\d+)", lambda m: self._edit_pull(int(m[1]), body)),
            ("GET", r"/pulls/(\d+)/merge", lambda m: self._merged(int(m[1]))),
            ("POST", r"/pulls/(\d+)/requested_reviewers", lambda m: self._reviewers(int(m[1]), body)),
            ("GET", r"/pulls/(\d+)/comments", lambda m: self._list_review_comments(int(m[1]), query, page)),
            ("GET", r"/issues", lambda m: page([self._public(i) for i in self.issues if self._state_ok(i, query)])),
            ("POST", r"/issues", lambda m: self._create_issue(body)),
            ("GET", r"/issues/(\d+)", lambda m: self._get(self.issues, int(m[1]))),
            ("PATCH", r"/issues/(\d+)", lambda m: self._edit_issue(int(m[1]), body)),
            ("GET", r"/issues/(\d+)/comments", lambda m: self._list_comments(int(m[1]), page)),
            ("POST", r"/issues/(\d+)/comments", lambda m: self._comment(int(m[1]), body)),
            ("POST", r"/issues/(\d+)/labels", lambda m: self._add_labels(int(m[1]), body)),
            ("POST", r"/issues/(\d+)/reactions", lambda m: self._react({"issue_number": int(m[1])}, body)),
            ("GET", r"/issues/comments/(\d+)", lambda m: self._get_comment(int(m[1]))),
            ("POST", r"/issues/comments/(\d+)/reactions", lambda m: self._react({"comment_id": int(m[1])}, body)),
            ("GET", r"/labels/([^/]+)", lambda m: self._get_label(m[1])),
            ("POST", r"/labels", lambda m: self._create_label(body)),
            ("GET", r"/collaborators/([^/]+)/permission", lambda m: (200, self._permission_json(m[1]))),
            ("GET", r"/commits/([^/]+)", lambda m: self._get_commit(m[1])),
            ("GET", r"/commits/([^/]+)/statuses", lambda m: self._list_statuses(m[1], page)),
            ("GET", r"/commits/([^/]+)/status", lambda m: self._combined_status(m[1])),
            # Not in GitHub's OpenAPI description (the checker says so) but answered by GitHub, and used by
            # PyGithub's Commit.get_statuses().
            ("GET", r"/statuses/([^/]+)", lambda m: self._list_statuses(m[1], page)),
            ("POST", r"/statuses/([^/]+)", lambda m: self._create_status(m[1], body)),
            ("GET", r"/deployments", lambda m: page(self._list_deployments(query))),
            ("GET", r"/deployments/(\d+)", lambda m: self._get_deployment(int(m[1]))),
            ("GET", r"/deployments/(\d+)/statuses", lambda m: self._list_deployment_statuses(int(m[1]), page)),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, rest)
            if method == route_method and match:
                return handler(match)
        return 404, {"message": "Not Found"}

    def _paged(self, path: str, query: dict[str, str], items: list[Any]) -> list[Any]:
        """One page of `items`, with the `Link` header GitHub sends when there are more."""
        per_page = max(1, min(int(query.get("per_page", 30)), 100))
        number = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        links = []
        for rel, target in (("prev", number - 1), ("next", number + 1), ("last", last), ("first", 1)):
            if (rel in ("prev", "first") and number > 1) or (rel in ("next", "last") and number < last):
                links.append(f'<{self.api_url}{path}?{urlencode({**query, "page": target})}>; rel="{rel}"')
        if links:
            self.extra_headers = {**self.extra_headers, "Link": ", ".join(links)}
        return items[(number - 1) * per_page:number * per_page]

    # ----------------------------------------------------------------------------- repository
    def _repo_json(self, full_name: str | None = None) -> dict[str, Any]:
        owner, name = (full_name or f"{self.owner}/{self.repo}").split("/", 1)
        url = f"{self.api_url}/repos/{owner}/{name}"
        ours = (owner, name) == (self.owner, self.repo)
        repo_id = 1 if ours else int(hashlib.sha1(f"{owner}/{name}".encode()).hexdigest()[:8], 16)
        repo: dict[str, Any] = {
            "id": repo_id, "node_id": _node_id("Repository", repo_id), "name": name, "full_name": f"{owner}/{name}",
            "owner": self._user(owner, "Organization" if owner == self.owner else "User"),
            "private": True, "html_url": f"{WEB}/{owner}/{name}", "description": None, "fork": not ours,
            "url": url, "default_branch": self.default_branch, "visibility": "private", "archived": False,
            "disabled": False, "clone_url": f"{WEB}/{owner}/{name}.git",
            "git_url": f"git://github.example/{owner}/{name}.git", "ssh_url": f"git@github.example:{owner}/{name}.git",
            "svn_url": f"{WEB}/{owner}/{name}", "created_at": "2021-08-16T21:34:28Z",
            "updated_at": "2024-01-07T21:57:24Z", "pushed_at": "2024-01-07T21:57:21Z", "homepage": None,
            "language": "Python", "mirror_url": None, "license": None, "size": 144, "forks": 0, "forks_count": 0,
            "stargazers_count": 0, "watchers": 0, "watchers_count": 0, "open_issues": 0, "open_issues_count": 0,
            "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False, "has_downloads": True,
            "is_template": False, "topics": [], "allow_forking": False, "web_commit_signoff_required": False,
            "has_discussions": False, "network_count": 0, "subscribers_count": 0,
        }
        for key, suffix in _REPO_LINKS.items():
            repo[f"{key}_url"] = f"{url}/{suffix}"
        return repo

    def _label_json(self, name: str) -> dict[str, Any]:
        return {"id": abs(hash(name)) % 10**6, "node_id": _node_id("Label", abs(hash(name)) % 10**6), "name": name,
                "color": self.labels.get(name, {}).get("color", "ededed"), "default": False, "description": None,
                "url": f"{self._repo_url()}/labels/{name}"}

    # ----------------------------------------------------------------------------- refs and commits
    def _git(self, *args: str) -> str | None:
        assert self.origin is not None
        done = subprocess.run(["git", *args], cwd=self.origin, capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else None

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` names: from `origin` when set; otherwise a 40-hex sha is itself, a pull's head branch
        is its head sha, the default branch and any other branch a pull names get a made-up sha."""
        if self.origin is not None:
            out = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            return out.strip() if out else None
        if _SHA.fullmatch(ref):
            return ref
        for pr in reversed(self.pulls):
            if pr["head"]["ref"] == ref and pr["head"]["repo"] and pr["head"]["repo"]["full_name"] == self._full():
                return pr["head"]["sha"]
        known = {self.default_branch, *(p["base"]["ref"] for p in self.pulls)}
        return fake_sha(ref) if ref in known else None

    def _full(self) -> str:
        return f"{self.owner}/{self.repo}"

    def _commit_json(self, sha: str) -> dict[str, Any]:
        url = f"{self._repo_url()}/commits/{sha}"
        person = {"name": "Dev", "email": "dev@example.com", "date": "2024-01-01T00:00:00Z"}
        author, committer, message, tree, parents = dict(person), dict(person), "", fake_sha(f"tree:{sha}"), []
        files: list[dict[str, Any]] = []
        if self.origin is not None:
            out = self._git("show", "-s", "--format=%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B", sha)
            if out:
                tree, parent_text, an, ae, at, cn, ce, ct, message = out.split("\x00", 8)
                parents = parent_text.split()
                stamp = lambda t: datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
                author = {"name": an, "email": ae, "date": stamp(at)}
                committer = {"name": cn, "email": ce, "date": stamp(ct)}
                message = message.rstrip("\n")
                files = self._files(sha, parents)
        additions, deletions = sum(f["additions"] for f in files), sum(f["deletions"] for f in files)
        return {"sha": sha, "node_id": _node_id("Commit", int(sha[:8], 16)), "url": url,
                "html_url": f"{self._web_url()}/commit/{sha}", "comments_url": f"{url}/comments",
                "commit": {"url": f"{self._repo_url()}/git/commits/{sha}", "author": author, "committer": committer,
                           "message": message, "tree": {"sha": tree, "url": f"{self._repo_url()}/git/trees/{tree}"},
                           "comment_count": 0,
                           "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                            "payload": None, "verified_at": None}},
                "author": None, "committer": None,
                "parents": [{"sha": p, "url": f"{self._repo_url()}/commits/{p}",
                             "html_url": f"{self._web_url()}/commit/{p}"} for p in parents],
                "stats": {"additions": additions, "deletions": deletions, "total": additions + deletions},
                "files": files}

    def _files(self, sha: str, parents: list[str]) -> list[dict[str, Any]]:
        base = parents[0] if parents else "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree
        numstat = self._git("diff", "--numstat", "--no-renames", base, sha) or ""
        names = dict(line.split("\t", 1)[::-1] for line in
                     (self._git("diff", "--name-status", "--no-renames", base, sha) or "").splitlines() if line)
        files = []
        for line in numstat.splitlines():
            added, deleted, name = line.split("\t", 2)
            plus, minus = (int(added), int(deleted)) if added != "-" else (0, 0)
            status = {"A": "added", "D": "removed", "M": "modified"}.get(names.get(name, "M")[0], "modified")
            blob = fake_sha(f"{sha}:{name}")
            files.append({"sha": blob, "filename": name, "status": status, "additions": plus, "deletions": minus,
                          "changes": plus + minus, "blob_url": f"{self._web_url()}/blob/{sha}/{name}",
                          "raw_url": f"{self._web_url()}/raw/{sha}/{name}",
                          "contents_url": f"{self._repo_url()}/contents/{name}?ref={sha}"})
        return files

    def _get_commit(self, ref: str) -> tuple[int, Any]:
        sha = self.resolve(ref)
        if sha is None:
            return 422, {"message": f"No commit found for SHA: {ref}"}
        return 200, self._commit_json(sha)

    # ----------------------------------------------------------------------------- commit statuses
    def _create_status(self, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "Status", "field": "state", "code": "custom"}]}
        resolved = self.resolve(sha)
        if resolved is None:
            return 422, {"message": f"No commit found for SHA: {sha}"}
        sid = next(self._ids["status"])
        creator = self._actor()
        status = {"url": f"{self._repo_url()}/statuses/{resolved}", "avatar_url": creator["avatar_url"], "id": sid,
                  "node_id": _node_id("StatusContext", sid), "state": body["state"],
                  "description": body.get("description"), "target_url": body.get("target_url"),
                  "context": body.get("context") or "default", "created_at": _now(), "updated_at": _now(),
                  "creator": creator}
        self.statuses.setdefault(resolved, []).append(status)
        return 201, status

    def _list_statuses(self, ref: str, page: Any) -> tuple[int, Any]:
        sha = self.resolve(ref)
        return page(list(reversed(self.statuses.get(sha, []))) if sha else [])

    def _combined_status(self, ref: str) -> tuple[int, Any]:
        sha = self.resolve(ref)
        if sha is None:
            return 404, {"message": "Not Found"}
        latest: dict[str, dict[str, Any]] = {}
        for status in self.statuses.get(sha, []):
            latest[status["context"]] = {k: v for k, v in status.items() if k != "creator"}
        states = {s["state"] for s in latest.values()}
        state = ("failure" if states & {"error", "failure"} else "pending" if "pending" in states or not states
                 else "success")
        return 200, {"state": state, "statuses": list(latest.values()), "sha": sha, "total_count": len(latest),
                     "repository": self._repo_json(), "commit_url": f"{self._repo_url()}/commits/{sha}",
                     "url": f"{self._repo_url()}/commits/{sha}/status"}

    # ----------------------------------------------------------------------------- pulls
    def _next_number(self) -> int:
        return len(self.issues) + 1

    def _state_ok(self, item: dict[str, Any], query: dict[str, str]) -> bool:
        wanted = query.get("state", "open")
        return wanted == "all" or item["state"] == wanted

    def _list_pulls(self, query: dict[str, str]) -> list[dict[str, Any]]:
        pulls = [p for p in self.pulls if self._state_ok(p, query)]
        if "head" in query:
            pulls = [p for p in pulls if p["head"]["label"] == query["head"]]
        if "base" in query:
            pulls = [p for p in pulls if p["base"]["ref"] == query["base"]]
        sort = query.get("sort", "created")
        key = {"updated": lambda p: (p["updated_at"], p["number"])}.get(sort, lambda p: p["number"])
        descending = query.get("direction", "desc" if sort == "created" else "asc") == "desc"
        return sorted(pulls, key=key, reverse=descending)

    def _part(self, ref: str, sha: str, full_name: str) -> dict[str, Any]:
        owner = full_name.split("/", 1)[0]
        return {"label": f"{owner}:{ref}", "ref": ref, "sha": sha,
                "user": self._user(owner, "Organization" if owner == self.owner else "User"),
                "repo": self._repo_json(full_name)}

    def _pull_json(self, number: int, title: str | None, body: str | None, head: dict[str, Any],
                   base: dict[str, Any], draft: bool, login: str, state: str = "open",
                   merged: bool = False) -> dict[str, Any]:
        url, web = f"{self._repo_url()}/pulls/{number}", f"{self._web_url()}/pull/{number}"
        issue_url, now = f"{self._repo_url()}/issues/{number}", _now()
        closed = state == "closed" or merged
        return {
            "url": url, "id": 1_000_000 + number, "node_id": _node_id("PullRequest", 1_000_000 + number),
            "html_url": web,
            "diff_url": f"{web}.diff", "patch_url": f"{web}.patch", "issue_url": issue_url,
            "commits_url": f"{url}/commits", "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self._repo_url()}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments", "statuses_url": f"{self._repo_url()}/statuses/{head['sha']}",
            "number": number, "state": "closed" if closed else "open", "locked": False, "title": title,
            "user": self._user(login, "Bot" if login.endswith("[bot]") else "User"), "body": body,
            "labels": [], "milestone": None, "active_lock_reason": None, "created_at": now, "updated_at": now,
            "closed_at": now if closed else None, "merged_at": now if merged else None,
            "merge_commit_sha": fake_sha(f"merge:{number}") if merged else None, "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [], "head": head, "base": base,
            "_links": {"self": {"href": url}, "html": {"href": web}, "issue": {"href": issue_url},
                       "comments": {"href": f"{issue_url}/comments"}, "review_comments": {"href": f"{url}/comments"},
                       "review_comment": {"href": f"{self._repo_url()}/pulls/comments{{/number}}"},
                       "commits": {"href": f"{url}/commits"},
                       "statuses": {"href": f"{self._repo_url()}/statuses/{head['sha']}"}},
            "author_association": "NONE" if login.endswith("[bot]") else "MEMBER", "auto_merge": None,
            "draft": draft, "merged": merged, "mergeable": None if closed else True, "rebaseable": None,
            "mergeable_state": "unknown" if closed else "clean", "merged_by": self._actor() if merged else None,
            "comments": 0, "review_comments": 0, "maintainer_can_modify": False, "commits": 1, "additions": 0,
            "deletions": 0, "changed_files": 0,
        }

    def _issue_json(self, number: int, title: str, body: str | None, labels: list[dict[str, Any]], login: str,
                    pull: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._repo_url()}/issues/{number}"
        now = _now()
        issue = {"url": url, "repository_url": self._repo_url(), "labels_url": f"{url}/labels{{/name}}",
                 "comments_url": f"{url}/comments", "events_url": f"{url}/events",
                 "html_url": pull["html_url"] if pull else f"{self._web_url()}/issues/{number}",
                 "id": 2_000_000 + number, "node_id": _node_id("Issue", 2_000_000 + number), "number": number,
                 "title": title,
                 "user": self._user(login, "Bot" if login.endswith("[bot]") else "User"), "labels": labels,
                 "state": pull["state"] if pull else "open", "locked": False, "assignee": None, "assignees": [],
                 "milestone": None, "comments": 0, "created_at": now, "updated_at": now,
                 "closed_at": pull["closed_at"] if pull else None, "author_association": "NONE",
                 "active_lock_reason": None, "body": body, "reactions": _reactions_json(f"{url}/reactions"),
                 "state_reason": None}
        if pull:
            issue["pull_request"] = {"url": pull["url"], "html_url": pull["html_url"], "diff_url": pull["diff_url"],
                                     "patch_url": pull["patch_url"], "merged_at": pull["merged_at"]}
            issue["draft"] = pull["draft"]
            issue["_pr"] = True
        return issue

    def _create_pull(self, body: dict[str, Any]) -> tuple[int, Any]:
        head_ref = body["head"].split(":", 1)[-1]
        if any(p["head"]["label"] == f"{self.owner}:{head_ref}" and p["state"] == "open" for p in self.pulls):
            return 422, {"message": "Validation Failed",
                         "errors": [{"message": f"A pull request already exists for {self.owner}:{head_ref}."}]}
        head_sha, base_sha = self.resolve(head_ref), self.resolve(body["base"])
        if self.origin is not None and (head_sha is None or base_sha is None):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": "head" if head_sha is None else "base", "code": "invalid"}]}
        number = self._next_number()
        head = self._part(head_ref, head_sha or fake_sha(head_ref), self._full())
        base = self._part(body["base"], base_sha or fake_sha(body["base"]), self._full())
        pr = self._pull_json(number, body.get("title"), body.get("body"), head, base, bool(body.get("draft")),
                             self.actor)
        self.pulls.append(pr)
        self.issues.append(self._issue_json(number, pr["title"], pr["body"], [], self.actor, pr))
        return 201, pr

    def add_pull(self, head_ref: str, head_sha: str, base_ref: str | None = None, body: str = "",
                 state: str = "open", merged: bool = False, head_repo: str | None = None,
                 title: str | None = None, login: str | None = None, draft: bool = False) -> int:
        """Seed a pull request as if it had been opened earlier; its number. `head_repo` ("fork-owner/name")
        makes it a pull from a fork; a merged pull is closed. `login` (default: the token's bot) opened it."""
        base_ref = base_ref or self.default_branch
        number = self._next_number()
        head = self._part(head_ref, head_sha, head_repo or self._full())
        base = self._part(base_ref, self.resolve(base_ref) or fake_sha(base_ref), self._full())
        pr = self._pull_json(number, title or f"Pull request from {head_ref}", body, head, base, draft,
                             login or self.actor, state, merged)
        self.pulls.append(pr)
        self.issues.append(self._issue_json(number, pr["title"], body, [], login or self.actor, pr))
        return number

    def _pull(self, number: int) -> dict[str, Any] | None:
        return next((p for p in self.pulls if p["number"] == number), None)

    def _get(self, items: list[dict[str, Any]], number: int) -> tuple[int, Any]:
        found = next((i for i in items if i["number"] == number), None)
        return (200, self._public(found)) if found else (404, {"message": "Not Found"})

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in _PRIVATE}

    def _edit_pull(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        pr = self._pull(number)
        if pr is None:
            return 404, {"message": "Not Found"}
        for key in ("title", "body", "state"):
            if key in body:
                pr[key] = body[key]
        if "base" in body:
            pr["base"].update(ref=body["base"], label=f"{self.owner}:{body['base']}")
        pr["updated_at"] = _now()
        if "state" in body:
            pr["closed_at"] = _now() if body["state"] == "closed" else None
        issue = next((i for i in self.issues if i["number"] == number), None)
        if issue is not None:
            issue.update(title=pr["title"], body=pr["body"], state=pr["state"], closed_at=pr["closed_at"])
        return 200, pr

    def _merged(self, number: int) -> tuple[int, Any]:
        pr = self._pull(number)
        return (204, None) if pr is not None and pr["merged"] else (404, {"message": "Not Found"})

    def _reviewers(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        pr = self._pull(number)
        if pr is None:
            return 404, {"message": "Not Found"}
        pr["requested_reviewers"] += [{"login": r} for r in body.get("reviewers", [])]
        pr["requested_teams"] += [{"slug": t} for t in body.get("team_reviewers", [])]
        return 201, pr

    # ----------------------------------------------------------------------------- review comments
    def add_review_comment(self, pr_number: int, body: str, path: str = "app/users/service.py", line: int = 1,
                           login: str = "octocat", user_type: str = "User", diff_hunk: str | None = None,
                           commit_id: str | None = None, author_association: str = "MEMBER",
                           review_id: int | None = None) -> int:
        """Seed a review comment on a pull's diff; its id."""
        pr = self._pull(pr_number)
        if pr is None:
            raise KeyError(f"no pull request #{pr_number}")
        cid = next(self._ids["review_comment"])
        url = f"{self._repo_url()}/pulls/comments/{cid}"
        web = f"{pr['html_url']}#discussion_r{cid}"
        sha = commit_id or pr["head"]["sha"]
        self.review_comments.setdefault(pr_number, []).append({
            "url": url, "pull_request_review_id": review_id or next(self._ids["review"]), "id": cid,
            "node_id": _node_id("PullRequestReviewComment", cid),
            "diff_hunk": diff_hunk or f"@@ -{line},3 +{line},4 @@ class UserService:", "path": path,
            "position": line, "original_position": line, "commit_id": sha, "original_commit_id": sha,
            "user": self._user(login, user_type), "body": body, "created_at": _now(), "updated_at": _now(),
            "html_url": web, "pull_request_url": pr["url"], "author_association": author_association,
            "_links": {"self": {"href": url}, "html": {"href": web}, "pull_request": {"href": pr["url"]}},
            "start_line": None, "original_start_line": None, "start_side": None, "line": line,
            "original_line": line, "side": "RIGHT", "subject_type": "line",
            "reactions": _reactions_json(f"{url}/reactions")})
        pr["review_comments"] += 1
        return cid

    def _list_review_comments(self, number: int, query: dict[str, str], page: Any) -> tuple[int, Any]:
        if self._pull(number) is None:
            return 404, {"message": "Not Found"}
        comments = list(self.review_comments.get(number, []))
        if "sort" in query and query.get("direction", "asc") == "desc":
            comments.reverse()
        return page(comments)

    # ----------------------------------------------------------------------------- issues and comments
    def _create_issue(self, body: dict[str, Any]) -> tuple[int, Any]:
        number = self._next_number()
        labels = [self._label_json(n if isinstance(n, str) else n["name"]) for n in body.get("labels", [])]
        issue = self._issue_json(number, body["title"], body.get("body"), labels, self.actor)
        self.issues.append(issue)
        return 201, self._public(issue)

    def _edit_issue(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        issue = next((i for i in self.issues if i["number"] == number), None)
        if issue is None:
            return 404, {"message": "Not Found"}
        for key in ("title", "body", "state"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            labels = [self._label_json(n if isinstance(n, str) else n["name"]) for n in body["labels"]]
            issue["labels"] = labels
            for pr in self.pulls:
                if pr["number"] == number:
                    pr["labels"] = labels
        return 200, self._public(issue)

    def add_comment(self, number: int, body: str, login: str = "octocat", user_type: str = "User",
                    author_association: str = "MEMBER") -> int:
        """Seed a comment on issue or pull `number` by `login`; its id (GET /issues/comments/{id} finds it)."""
        if not any(i["number"] == number for i in self.issues):
            raise KeyError(f"no issue or pull request #{number}")
        return self._record_comment(number, body, self._user(login, user_type), author_association)["id"]

    def _record_comment(self, number: int, body: str, user: dict[str, Any],
                        author_association: str) -> dict[str, Any]:
        cid = next(self._ids["comment"])
        issue = next(i for i in self.issues if i["number"] == number)
        url = f"{self._repo_url()}/issues/comments/{cid}"
        record = {"id": cid, "node_id": _node_id("IssueComment", cid), "url": url,
                  "html_url": f"{issue['html_url']}#issuecomment-{cid}", "body": body, "user": user,
                  "created_at": _now(), "updated_at": _now(), "issue_url": issue["url"],
                  "author_association": author_association, "performed_via_github_app": None,
                  "reactions": _reactions_json(f"{url}/reactions"), "_issue": number}
        self.comment_records[cid] = record
        self.comments.setdefault(number, []).append(body)
        issue["comments"] += 1
        return record

    def _comment(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        if not any(i["number"] == number for i in self.issues):
            return 404, {"message": "Not Found"}
        return 201, self._public(self._record_comment(number, body["body"], self._actor(), "NONE"))

    def _list_comments(self, number: int, page: Any) -> tuple[int, Any]:
        if not any(i["number"] == number for i in self.issues):
            return 404, {"message": "Not Found"}
        return page([self._public(c) for c in self.comment_records.values() if c["_issue"] == number])

    def _get_comment(self, cid: int) -> tuple[int, Any]:
        record = self.comment_records.get(cid)
        return (200, self._public(record)) if record else (404, {"message": "Not Found"})

    def _react(self, target: dict[str, int], body: dict[str, Any]) -> tuple[int, Any]:
        found = (target.get("comment_id") in self.comment_records if "comment_id" in target
                 else any(i["number"] == target["issue_number"] for i in self.issues))
        if not found:
            return 404, {"message": "Not Found"}
        if body.get("content") not in REACTIONS:
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "Reaction", "field": "content", "code": "invalid"}]}
        entry = {**target, "content": body["content"]}
        if entry in self.reactions:  # the same user's same reaction: GitHub answers 200 with the existing one
            return 200, self._reaction_json[self.reactions.index(entry)]
        rid = next(self._ids["reaction"])
        reaction = {"id": rid, "node_id": _node_id("Reaction", rid), "user": self._actor(),
                    "content": body["content"], "created_at": _now()}
        self.reactions.append(entry)
        self._reaction_json.append(reaction)
        return 201, reaction

    def _add_labels(self, number: int, body: Any) -> tuple[int, Any]:
        names = body.get("labels", []) if isinstance(body, dict) else body
        names = [n if isinstance(n, str) else n["name"] for n in names]
        for item in [*self.issues, *self.pulls]:
            if item["number"] == number:
                known = {label["name"] for label in item["labels"]}
                item["labels"] += [self._label_json(n) for n in names if n not in known]
        return 200, [self._label_json(n) for n in names]

    def _get_label(self, name: str) -> tuple[int, Any]:
        return (200, self._label_json(name)) if name in self.labels else (404, {"message": "Not Found"})

    def _create_label(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["name"] in self.labels:
            return 422, {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}
        self.labels[body["name"]] = {"color": body.get("color", "ededed")}
        return 201, self._label_json(body["name"])

    # ----------------------------------------------------------------------------- collaborators
    def _permission_json(self, login: str) -> dict[str, Any]:
        """GitHub's answer for `login`: the legacy base permission (maintain reads as write, triage as read)
        and the role's own name; someone who is no collaborator has permission and role `none`."""
        role = self.permissions.get(login)
        if role is not None and role not in ROLES:
            raise ValueError(f"permissions[{login!r}] = {role!r}: not one of {sorted(ROLES)}")
        user = {**self._user(login, "Bot" if login.endswith("[bot]") else "User"), "role_name": role or "none",
                "permissions": {name: role is not None and _RANKS.index(role) >= _RANKS.index(rank)
                                for name, rank in (("admin", "admin"), ("maintain", "maintain"), ("push", "write"),
                                                   ("triage", "triage"), ("pull", "read"))}}
        return {"permission": ROLES.get(role, "none") if role else "none", "role_name": role or "none", "user": user}

    # ----------------------------------------------------------------------------- deployments
    def add_deployment(self, sha: str, environment: str = "staging", ref: str | None = None, task: str = "deploy",
                       state: str | None = None, description: str | None = None,
                       payload: dict[str, Any] | None = None) -> int:
        """Seed a deployment of `sha` (from `ref`, default the default branch) to `environment`; its id. With
        `state`, it also gets one deployment status in that state."""
        did = next(self._ids["deployment"])
        url = f"{self._repo_url()}/deployments/{did}"
        self.deployments.append({
            "url": url, "id": did, "node_id": _node_id("Deployment", did), "sha": sha,
            "ref": ref or self.default_branch, "task": task, "payload": payload or {},
            "original_environment": environment, "environment": environment, "description": description,
            "creator": self._actor(), "created_at": _now(), "updated_at": _now(), "statuses_url": f"{url}/statuses",
            "repository_url": self._repo_url(), "transient_environment": False,
            "production_environment": environment == "production", "performed_via_github_app": None})
        self.deployment_statuses[did] = []
        if state is not None:
            self.add_deployment_status(did, state)
        return did

    def add_deployment_status(self, deployment_id: int, state: str = "success", description: str = "",
                              environment_url: str = "", log_url: str = "") -> int:
        """Seed a status (error, failure, inactive, in_progress, queued, pending, success) of a deployment."""
        deployment = next((d for d in self.deployments if d["id"] == deployment_id), None)
        if deployment is None:
            raise KeyError(f"no deployment {deployment_id}")
        sid = next(self._ids["deployment_status"])
        self.deployment_statuses[deployment_id].append({
            "url": f"{deployment['url']}/statuses/{sid}", "id": sid, "node_id": _node_id("DeploymentStatus", sid),
            "state": state, "creator": self._actor(), "description": description,
            "environment": deployment["environment"], "target_url": log_url, "created_at": _now(),
            "updated_at": _now(), "deployment_url": deployment["url"], "repository_url": self._repo_url(),
            "environment_url": environment_url, "log_url": log_url, "performed_via_github_app": None})
        deployment["updated_at"] = _now()
        return sid

    def _list_deployments(self, query: dict[str, str]) -> list[dict[str, Any]]:
        found: Iterable[dict[str, Any]] = reversed(self.deployments)
        for name in ("sha", "ref", "task", "environment"):
            if name in query:
                found = [d for d in found if d[name] == query[name]]
        return list(found)

    def _get_deployment(self, did: int) -> tuple[int, Any]:
        found = next((d for d in self.deployments if d["id"] == did), None)
        return (200, found) if found else (404, {"message": "Not Found"})

    def _list_deployment_statuses(self, did: int, page: Any) -> tuple[int, Any]:
        if did not in self.deployment_statuses:
            return 404, {"message": "Not Found"}
        return page(list(reversed(self.deployment_statuses[did])))
