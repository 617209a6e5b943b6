"""The GitHub REST API through PyGithub, at GITHUB_API_URL (so GitHub Enterprise Server works)."""

from __future__ import annotations

from typing import Any

from remediate.errors import UserError


class GitHubError(Exception):
    pass


def connect_repo(token: str, api_url: str, repository: str) -> Any:
    from github import Auth, Github, GithubException
    from github.GithubRetry import GithubRetry

    if not repository or "/" not in repository:
        raise UserError("expected owner/name", field="GITHUB_REPOSITORY")
    # 5xx and secondary rate limits are retried with backoff, and waits are capped so a run cannot
    # hang on a rate limit; writes are spaced out a little, as GitHub asks of integrations.
    retry = GithubRetry(total=5, backoff_factor=0.5, secondary_rate_wait=30, max_rate_limit_wait=120,
                        allowed_methods=frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"}))
    client = Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), timeout=30, retry=retry,
                    seconds_between_requests=None, seconds_between_writes=0.2, user_agent="remediate")
    try:
        return client.get_repo(repository)
    except GithubException as exc:
        raise GitHubError(explain(exc, f"reading repository {repository}")) from None


def ensure_labels(repo: Any, names: list[str], color: str = "d93f0b") -> None:
    from github import GithubException

    for name in names:
        try:
            repo.get_label(name)
        except GithubException as exc:
            if exc.status != 404:
                raise
            try:
                repo.create_label(name=name, color=color)
            except GithubException as create_exc:
                if create_exc.status != 422:  # created meanwhile by a concurrent run
                    raise


def add_labels(repo: Any, number: int, names: list[str]) -> None:
    """Through the issue's PATCH with the union of labels: PyGithub's add_to_labels posts a bare array,
    a form GitHub's OpenAPI description of that endpoint no longer admits."""
    issue = repo.get_issue(number)
    current = [label.name for label in issue.labels]
    wanted = current + [n for n in names if n not in current]
    if wanted != current:
        issue.edit(labels=wanted)


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
