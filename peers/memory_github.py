"""A `GitHub` (remediate.deliver.github) kept in memory, for in-process tests of the pipeline, delivery and
escalation. The PyGithub implementation is tested against the REST stand-in (peers/github_stub.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from remediate.deliver.github import GitHubError, IssueRef


@dataclass
class MemoryGitHub:
    default_branch: str = "main"
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    fail: set[str] = field(default_factory=set)  # method names that raise GitHubError
    calls: list[str] = field(default_factory=list)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise GitHubError(f"GitHub API 500 while {name}: scripted failure")

    def _item(self, number: int) -> dict[str, Any]:
        return next(i for i in self.pulls + self.issues if i["number"] == number)

    def open_pull_request(self, head_branch: str) -> IssueRef | None:
        self._enter("open_pull_request")
        for pr in self.pulls:
            if pr["head"] == head_branch and pr["state"] == "open":
                return IssueRef(pr["number"], pr["url"], pr["body"])
        return None

    def create_pull_request(self, base: str, head: str, title: str, body: str, draft: bool) -> IssueRef | None:
        self._enter("create_pull_request")
        number = len(self.pulls) + len(self.issues) + 1
        pr = {"number": number, "url": f"https://github.example/acme/svc/pull/{number}", "base": base, "head": head,
              "title": title, "body": body, "draft": draft, "state": "open", "comments": [], "labels": [],
              "reviewers": []}
        self.pulls.append(pr)
        return IssueRef(number, pr["url"], body)

    def edit_body(self, number: int, body: str) -> None:
        self._enter("edit_body")
        self._item(number)["body"] = body

    def comment(self, number: int, body: str) -> None:
        self._enter("comment")
        self._item(number)["comments"].append(body)

    def ensure_labels(self, names: Sequence[str], color: str) -> None:
        self._enter("ensure_labels")
        self.labels.update(names)

    def add_labels(self, number: int, names: Sequence[str]) -> None:
        self._enter("add_labels")
        item = self._item(number)
        item["labels"] += [n for n in names if n not in item["labels"]]

    def request_reviewers(self, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]) -> None:
        self._enter("request_reviewers")
        self._item(number)["reviewers"] += [*reviewers, *team_reviewers]

    def open_issues(self) -> list[IssueRef]:
        self._enter("open_issues")
        return [IssueRef(i["number"], i["url"], i["body"]) for i in self.issues if i["state"] == "open"]

    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> IssueRef:
        self._enter("create_issue")
        number = len(self.pulls) + len(self.issues) + 1
        issue = {"number": number, "url": f"https://github.example/acme/svc/issues/{number}", "title": title,
                 "body": body, "labels": list(labels), "state": "open", "comments": []}
        self.issues.append(issue)
        return IssueRef(number, issue["url"], body)
