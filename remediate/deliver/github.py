"""GitHub as delivery and escalation need it: a small `GitHub` protocol, and its implementation on the REST
API through PyGithub at GITHUB_API_URL (so GitHub Enterprise Server works). Tests can hand the pipeline
another implementation; the PyGithub one is tested against a REST stand-in checked against GitHub's
OpenAPI description."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from remediate.errors import UserError
from remediate.outcome import Failure, Reason


class GitHubError(Failure):
    reason_code = Reason.GITHUB_FAILED


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str
    body: str = ""


@dataclass(frozen=True)
class PullInfo:
    number: int
    url: str
    state: str
    body: str
    head_ref: str
    head_sha: str
    head_repo: str  # owner/name of the head's repository: a fork's differs
    base_ref: str
    merged: bool = False


@dataclass(frozen=True)
class ReviewComment:
    author: str
    path: str
    line: int | None
    body: str


WRITE_PERMISSIONS = ("admin", "maintain", "write")


class GitHub(Protocol):
    """One repository, the calls remediate makes on it. Every method raises GitHubError on failure."""

    @property
    def default_branch(self) -> str: ...

    def open_pull_request(self, head_branch: str) -> IssueRef | None: ...

    def create_pull_request(self, base: str, head: str, title: str, body: str, draft: bool) -> IssueRef | None:
        """None when one for `head` exists already (a concurrent run opened it first)."""

    def edit_body(self, number: int, body: str) -> None: ...

    def comment(self, number: int, body: str) -> None: ...

    def ensure_labels(self, names: Sequence[str], color: str) -> None: ...

    def add_labels(self, number: int, names: Sequence[str]) -> None: ...

    def request_reviewers(self, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]) -> None: ...

    def open_issues(self) -> list[IssueRef]:
        """Open issues that are not pull requests."""

    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> IssueRef: ...

    # After the PR (remediate/followup): review runs and staging validation.
    def permission(self, login: str) -> str:
        """The user's role on the repository: admin, maintain, write, triage, read or none."""

    def react(self, content: str, *, comment_id: int | None = None, issue_number: int | None = None) -> None: ...

    def pull(self, number: int) -> PullInfo: ...

    def find_pull(self, head_branch: str) -> PullInfo | None:
        """The newest pull request from this repository's branch, open, closed or merged."""

    def review_comments(self, number: int, limit: int) -> list[ReviewComment]: ...

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None) -> None: ...

    def status_states(self, sha: str, context: str) -> list[str]:
        """The states of the commit's statuses with this context, newest first."""

    def deployments(self, environment: str, limit: int) -> list[tuple[int, str]]:
        """(id, sha) of the environment's deployments, newest first."""


class PyGitHub:
    """`GitHub` on PyGithub. Errors become GitHubError with what to do about them."""

    def __init__(self, repo: Any) -> None:
        self._repo = repo
        self._objects: dict[int, Any] = {}  # pulls and issues already fetched: acted on without another GET

    def _pull(self, number: int) -> Any:
        return self._objects.get(number) or self._objects.setdefault(number, self._repo.get_pull(number))

    def _issue(self, number: int) -> Any:
        return self._objects.get(number) or self._objects.setdefault(number, self._repo.get_issue(number))

    @classmethod
    def connect(cls, token: str, api_url: str, repository: str) -> PyGitHub:
        from github import Auth, Github, GithubException
        from github.GithubRetry import GithubRetry

        if not repository or "/" not in repository:
            raise UserError("expected owner/name", field="GITHUB_REPOSITORY")
        # 5xx and secondary rate limits are retried with backoff, and waits are capped so a run cannot
        # hang on a rate limit. Writes are not spaced out: a run makes a handful (GitHub's advice to wait a
        # second between writes is for integrations that make many), and a secondary limit is retried.
        retry = GithubRetry(total=5, backoff_factor=0.5, secondary_rate_wait=30, max_rate_limit_wait=120,
                            allowed_methods=frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"}))
        client = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), timeout=30, retry=retry,
                        seconds_between_requests=None, seconds_between_writes=None, user_agent="remediate")
        try:
            return cls(client.get_repo(repository))
        except GithubException as exc:
            raise GitHubError(explain(exc, f"reading repository {repository}")) from None

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from github import GithubException

        try:
            return fn(*args, **kwargs)
        except GithubException as exc:
            raise GitHubError(explain(exc, doing)) from None

    @property
    def default_branch(self) -> str:
        return str(self._repo.default_branch)

    def open_pull_request(self, head_branch: str) -> IssueRef | None:
        def find() -> IssueRef | None:
            owner = self._repo.owner.login
            for pr in self._repo.get_pulls(state="open", head=f"{owner}:{head_branch}"):
                self._objects[pr.number] = pr
                return IssueRef(pr.number, pr.html_url, pr.body or "")
            return None
        return self._call("looking for the pull request", find)

    def create_pull_request(self, base: str, head: str, title: str, body: str, draft: bool) -> IssueRef | None:
        from github import GithubException

        try:
            pr = self._repo.create_pull(base=base, head=head, title=title, body=body, draft=draft,
                                        maintainer_can_modify=True)
        except GithubException as exc:
            if exc.status == 422:  # one for this head exists: a concurrent run, or a retried POST that landed
                return None
            raise GitHubError(explain(exc, "opening the pull request")) from None
        self._objects[pr.number] = pr
        return IssueRef(pr.number, pr.html_url, body)

    def edit_body(self, number: int, body: str) -> None:
        self._call("updating the pull request", lambda: self._pull(number).edit(body=body))

    def comment(self, number: int, body: str) -> None:
        def post() -> None:
            item = self._objects.get(number)
            if item is not None and hasattr(item, "create_issue_comment"):
                item.create_issue_comment(body)  # a pull request
            else:
                self._issue(number).create_comment(body)
        self._call("commenting", post)

    def ensure_labels(self, names: Sequence[str], color: str) -> None:
        from github import GithubException

        for name in names:
            try:
                self._repo.get_label(name)
            except GithubException as exc:
                if exc.status != 404:
                    raise GitHubError(explain(exc, f"reading label {name}")) from None
                try:
                    self._repo.create_label(name=name, color=color)
                except GithubException as create_exc:
                    if create_exc.status != 422:  # created meanwhile by a concurrent run
                        raise GitHubError(explain(create_exc, f"creating label {name}")) from None

    def add_labels(self, number: int, names: Sequence[str]) -> None:
        """Through the issue's PATCH with the union of labels: PyGithub's add_to_labels posts a bare array,
        a form GitHub's OpenAPI description of that endpoint no longer admits."""
        def add() -> None:
            issue = self._repo.get_issue(number)
            current = [label.name for label in issue.labels]
            wanted = current + [n for n in names if n not in current]
            if wanted != current:
                issue.edit(labels=wanted)
        self._call("labelling", add)

    def request_reviewers(self, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str]) -> None:
        self._call("requesting reviewers", lambda: self._pull(number).create_review_request(
            reviewers=list(reviewers), team_reviewers=list(team_reviewers)))

    def open_issues(self) -> list[IssueRef]:
        return self._call("listing issues", lambda: [
            self._remember(i) for i in self._repo.get_issues(state="open") if i.pull_request is None])

    def create_issue(self, title: str, body: str, labels: Sequence[str]) -> IssueRef:
        issue = self._call("opening the escalation issue",
                           lambda: self._repo.create_issue(title=title, body=body, labels=list(labels)))
        return IssueRef(issue.number, issue.html_url, body)

    def permission(self, login: str) -> str:
        from github import GithubException

        try:
            raw = self._repo.requester.requestJsonAndCheck(  # role_name tells maintain from write
                "GET", f"{self._repo.url}/collaborators/{quote(login, safe='')}/permission")[1]
        except GithubException as exc:
            if exc.status == 404:  # not a collaborator
                return "none"
            raise GitHubError(explain(exc, f"reading the permission of {login}")) from None
        role = raw.get("role_name") if isinstance(raw, dict) else None
        permission = raw.get("permission") if isinstance(raw, dict) else None
        return str(role if role in ("admin", "maintain", "write", "triage", "read") else permission or "none")

    def react(self, content: str, *, comment_id: int | None = None, issue_number: int | None = None) -> None:
        path = f"issues/comments/{comment_id}" if comment_id is not None else f"issues/{issue_number}"
        self._call("reacting", lambda: self._repo.requester.requestJsonAndCheck(
            "POST", f"{self._repo.url}/{path}/reactions", input={"content": content}))

    @staticmethod
    def _pull_info(pr: Any) -> PullInfo:
        head_repo = pr.head.repo.full_name if pr.head.repo is not None else ""
        return PullInfo(pr.number, pr.html_url, pr.state, pr.body or "", pr.head.ref, pr.head.sha, head_repo,
                        pr.base.ref, bool(pr.merged))

    def pull(self, number: int) -> PullInfo:
        def get() -> PullInfo:
            pr = self._repo.get_pull(number)
            self._objects[number] = pr
            return self._pull_info(pr)
        return self._call(f"reading pull request #{number}", get)

    def find_pull(self, head_branch: str) -> PullInfo | None:
        def find() -> PullInfo | None:
            owner = self._repo.owner.login
            for pr in self._repo.get_pulls(state="all", head=f"{owner}:{head_branch}", sort="created",
                                           direction="desc"):
                self._objects[pr.number] = pr
                return self._pull_info(pr)
            return None
        return self._call("looking for the pull request", find)

    def review_comments(self, number: int, limit: int) -> list[ReviewComment]:
        def listed() -> list[ReviewComment]:
            found = []
            for comment in self._pull(number).get_review_comments():
                found.append(ReviewComment(comment.user.login if comment.user else "", comment.path or "",
                                           comment.line, comment.body or ""))
            return found[-limit:] if limit else []
        return self._call("reading review comments", listed)

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None) -> None:
        body = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self._call("publishing the commit status", lambda: self._repo.requester.requestJsonAndCheck(
            "POST", f"{self._repo.url}/statuses/{sha}", input=body))

    def status_states(self, sha: str, context: str) -> list[str]:
        def listed() -> list[str]:
            raw = self._repo.requester.requestJsonAndCheck(
                "GET", f"{self._repo.url}/commits/{sha}/statuses", parameters={"per_page": 100})[1]
            return [str(s.get("state")) for s in raw or [] if isinstance(s, dict) and s.get("context") == context]
        return self._call("reading commit statuses", listed)

    def deployments(self, environment: str, limit: int) -> list[tuple[int, str]]:
        def listed() -> list[tuple[int, str]]:
            found = []
            for deployment in self._repo.get_deployments(environment=environment):
                found.append((deployment.id, deployment.sha))
                if len(found) >= limit:
                    break
            return found
        return self._call(f"listing deployments to {environment}", listed)

    def _remember(self, issue: Any) -> IssueRef:
        self._objects[issue.number] = issue
        return IssueRef(issue.number, issue.html_url, issue.body or "")


def explain(exc: Any, doing: str) -> str:
    status = getattr(exc, "status", None)
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else str(exc)
    hint = ""
    if status == 401:
        hint = " (the github-token is invalid or expired)"
    elif status == 403 and message and "pull request" in message.lower():
        hint = (" (allow it under Settings > Actions > General > Workflow permissions: 'Allow GitHub Actions "
                "to create and approve pull requests', or pass a GitHub App token)")
    elif status == 403:
        hint = " (the token lacks permission: grant contents, pull-requests and issues write)"
    elif status == 404:
        hint = " (repository not found or not visible to the token)"
    return f"GitHub API {status} while {doing}: {message}{hint}"
