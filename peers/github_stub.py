"""A local stand-in for the part of GitHub's REST API that remediate uses: repository, pulls,
issues, labels, comments. In-memory state, request journal, and every request checked against
GitHub's OpenAPI description (violations are collected for the tests to assert on)."""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from peers.loopback import QuietHandler, base_url, serve, stop
from peers.openapi import OpenAPIChecker


class GitHubStub:
    def __init__(self, owner: str = "acme", repo: str = "user-service",
                 token: str = "ghs_testtoken000000000000000000000000",
                 default_branch: str = "main", checker: OpenAPIChecker | None = None) -> None:
        self.owner, self.repo, self.token, self.default_branch = owner, repo, token, default_branch
        self.checker = checker
        self.pulls: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []  # issues and PRs share numbers, as on GitHub
        self.labels: dict[str, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self.journal: list[dict[str, Any]] = []
        self.violations: list[str] = []
        # "POST /pulls" -> status, or (status, message) or (status, message, headers), answered once
        self.fail_next: dict[str, Any] = {}
        self.extra_headers: dict[str, str] = {}  # headers of the next scripted failure
        self.garbage_next: set[str] = set()  # "POST /pulls" -> answer 201 with a body that is not JSON, once
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def api_url(self) -> str:
        assert self._server
        return base_url(self._server)

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.repo}"

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
        """`POST /pulls`, `PATCH /issues/N`: the key for scripted failures."""
        rest = path.removeprefix(f"/repos/{self.owner}/{self.repo}")
        return f"{method} " + (re.sub(r"/\d+", "/N", rest) or "/")

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        prefix = f"/repos/{self.owner}/{self.repo}"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        short = self.short(method, path)
        if short in self.fail_next:
            failure = self.fail_next.pop(short)
            failure = failure if isinstance(failure, tuple) else (failure, "scripted failure")
            if len(failure) == 3:
                self.extra_headers = dict(failure[2])
            return failure[0], {"message": failure[1]}
        routes = [
            ("GET", r"", lambda m: (200, self._repo_json())),
            ("GET", r"/pulls", lambda m: (200, self._list_pulls(query))),
            ("POST", r"/pulls", lambda m: self._create_pull(body)),
            ("GET", r"/pulls/(\d+)", lambda m: self._get(self.pulls, int(m[1]))),
            ("PATCH", r"/pulls/(\d+)", lambda m: self._edit_pull(int(m[1]), body)),
            ("POST", r"/pulls/(\d+)/requested_reviewers", lambda m: self._reviewers(int(m[1]), body)),
            ("GET", r"/issues", lambda m: (200, [i for i in self.issues if i["state"] == query.get("state", "open")])),
            ("POST", r"/issues", lambda m: self._create_issue(body)),
            ("GET", r"/issues/(\d+)", lambda m: self._get(self.issues, int(m[1]))),
            ("PATCH", r"/issues/(\d+)", lambda m: self._edit_issue(int(m[1]), body)),
            ("POST", r"/issues/(\d+)/comments", lambda m: self._comment(int(m[1]), body)),
            ("POST", r"/issues/(\d+)/labels", lambda m: self._add_labels(int(m[1]), body)),
            ("GET", r"/labels/([^/]+)", lambda m: self._get_label(m[1])),
            ("POST", r"/labels", lambda m: self._create_label(body)),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, rest)
            if method == route_method and match:
                return handler(match)
        return 404, {"message": "Not Found"}

    def _repo_json(self) -> dict[str, Any]:
        return {"id": 1, "name": self.repo, "full_name": f"{self.owner}/{self.repo}",
                "owner": {"login": self.owner, "id": 1, "type": "Organization"},
                "default_branch": self.default_branch, "url": self._repo_url(),
                "html_url": f"https://github.example/{self.owner}/{self.repo}", "private": True}

    def _next_number(self) -> int:
        return len(self.issues) + 1

    def _label_json(self, name: str) -> dict[str, Any]:
        return {"id": abs(hash(name)) % 10**6, "name": name, "color": self.labels.get(name, {}).get("color", "ededed"),
                "url": f"{self._repo_url()}/labels/{name}"}

    def _list_pulls(self, query: dict[str, str]) -> list[dict[str, Any]]:
        pulls = [p for p in self.pulls if p["state"] == query.get("state", "open")]
        if "head" in query:
            pulls = [p for p in pulls if f"{self.owner}:{p['head']['ref']}" == query["head"]]
        if "base" in query:
            pulls = [p for p in pulls if p["base"]["ref"] == query["base"]]
        return pulls

    def _create_pull(self, body: dict[str, Any]) -> tuple[int, Any]:
        if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.pulls):
            return 422, {"message": "Validation Failed",
                         "errors": [{"message": f"A pull request already exists for {self.owner}:{body['head']}."}]}
        number = self._next_number()
        pr = {"id": number, "number": number, "state": "open", "title": body.get("title"), "body": body.get("body"),
              "draft": bool(body.get("draft")), "url": f"{self._repo_url()}/pulls/{number}",
              "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{number}",
              "issue_url": f"{self._repo_url()}/issues/{number}",
              "head": {"ref": body["head"], "label": f"{self.owner}:{body['head']}"},
              "base": {"ref": body["base"], "label": f"{self.owner}:{body['base']}"},
              "labels": [], "requested_reviewers": [], "requested_teams": []}
        self.pulls.append(pr)
        self.issues.append({"number": number, "state": "open", "title": pr["title"], "body": pr["body"],
                            "labels": [], "pull_request": {"url": pr["url"]}, "html_url": pr["html_url"],
                            "url": pr["issue_url"], "_pr": True})
        return 201, pr

    def _get(self, items: list[dict[str, Any]], number: int) -> tuple[int, Any]:
        found = next((i for i in items if i["number"] == number), None)
        return (200, self._public(found)) if found else (404, {"message": "Not Found"})

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _edit_pull(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        pr = next((p for p in self.pulls if p["number"] == number), None)
        if pr is None:
            return 404, {"message": "Not Found"}
        for key in ("title", "body", "state", "base"):
            if key in body:
                pr[key] = body[key] if key != "base" else {"ref": body[key]}
        return 200, pr

    def _reviewers(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        pr = next((p for p in self.pulls if p["number"] == number), None)
        if pr is None:
            return 404, {"message": "Not Found"}
        pr["requested_reviewers"] += [{"login": r} for r in body.get("reviewers", [])]
        pr["requested_teams"] += [{"slug": t} for t in body.get("team_reviewers", [])]
        return 201, pr

    def _create_issue(self, body: dict[str, Any]) -> tuple[int, Any]:
        number = self._next_number()
        labels = [self._label_json(n if isinstance(n, str) else n["name"]) for n in body.get("labels", [])]
        issue = {"id": number, "number": number, "state": "open", "title": body["title"], "body": body.get("body"),
                 "labels": labels, "pull_request": None, "url": f"{self._repo_url()}/issues/{number}",
                 "html_url": f"https://github.example/{self.owner}/{self.repo}/issues/{number}"}
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

    def _comment(self, number: int, body: dict[str, Any]) -> tuple[int, Any]:
        if not any(i["number"] == number for i in self.issues):
            return 404, {"message": "Not Found"}
        self.comments.setdefault(number, []).append(body["body"])
        cid = sum(len(c) for c in self.comments.values())
        return 201, {"id": cid, "body": body["body"], "url": f"{self._repo_url()}/issues/comments/{cid}"}

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
