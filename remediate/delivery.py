"""Delivery: a branch holding exactly the vetted change, pushed to origin, and one PR per incident."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediate.changes import ChangeSet
from remediate.config import DeliveryConfig
from remediate.gh import GitHubError, add_labels, ensure_labels, explain
from remediate.gitops import Git, GitError
from remediate.incident import Incident
from remediate.report import PullRequest


class DeliveryError(Exception):
    pass


@dataclass(frozen=True)
class Commit:
    branch: str
    sha: str
    base_branch: str


def pr_title(incident: Incident) -> str:
    summary = " ".join(incident.summary.split())[:90] or "automated fix"
    return f"hotfix({incident.id[:40]}): {summary}"


def commit_change(git: Git, changes: ChangeSet, incident: Incident, config: DeliveryConfig, base_branch: str,
                  trace_id: str, summary: str | None) -> Commit:
    branch = f"{config.branch_prefix}{incident.branch_slug}"
    git.run("check-ref-format", "--branch", branch)
    original = git.out("symbolic-ref", "--short", "-q", "HEAD") if git.run(
        "symbolic-ref", "-q", "HEAD", check=False).returncode == 0 else git.head()
    git.run("checkout", "-q", "-B", branch)
    try:
        return _commit(git, changes, incident, config, branch, base_branch, trace_id, summary)
    finally:
        # Leave the checkout on the branch it was on; the fix lives on the hotfix branch.
        git.run("checkout", "-q", original, check=False)


def _commit(git: Git, changes: ChangeSet, incident: Incident, config: DeliveryConfig, branch: str,
            base_branch: str, trace_id: str, summary: str | None) -> Commit:
    paths = sorted(changes.files_touched)
    # Exactly the vetted paths: never `git add -A`, whatever else the tests left in the tree.
    git.run("add", "--all", "--", *paths)
    staged = set(git.out("diff", "--cached", "--name-only", "-z").split("\0")) - {""}
    if staged != set(paths):
        raise DeliveryError(f"staged files {sorted(staged)} differ from the vetted change {paths}")
    message = (f"{pr_title(incident)}\n\n{(summary or '').strip()[:2000]}\n\n"
               f"Incident-Id: {incident.id}\nTrace-Id: {trace_id}\n")
    identity = {"GIT_AUTHOR_NAME": config.bot_name, "GIT_AUTHOR_EMAIL": config.bot_email,
                "GIT_COMMITTER_NAME": config.bot_name, "GIT_COMMITTER_EMAIL": config.bot_email}
    Git(git.repo, {**git.env, **identity}).run("commit", "-q", "--no-verify", "-F", "-", stdin=message.encode())
    return Commit(branch, git.head(), base_branch)


def push(git: Git, commit: Commit, token: str | None) -> None:
    """Force-with-lease against what the remote had when we looked: a re-run replaces its own branch,
    but never a branch someone pushed to meanwhile."""
    ref = f"refs/heads/{commit.branch}"
    remote = git.run("ls-remote", "origin", ref, token=token).stdout.decode().split()
    lease = remote[0] if remote else ""
    try:
        git.run("push", "-q", f"--force-with-lease={ref}:{lease}", "origin", f"{commit.sha}:{ref}", token=token)
    except GitError as exc:
        raise DeliveryError(f"push of {commit.branch} was rejected: {exc}") from None


def open_or_update_pr(repo: Any, commit: Commit, incident: Incident, body: str, config: DeliveryConfig) -> PullRequest:
    from github import GithubException

    try:
        owner = repo.owner.login
        existing = list(repo.get_pulls(state="open", head=f"{owner}:{commit.branch}"))
        if existing:
            pr = existing[0]
            pr.edit(body=body)
            pr.create_issue_comment(f"remediate re-ran for incident `{incident.id}` and updated this branch "
                                    f"to `{commit.sha[:12]}`.")
            created = False
        else:
            pr = repo.create_pull(base=commit.base_branch, head=commit.branch, title=pr_title(incident),
                                  body=body, draft=config.draft, maintainer_can_modify=True)
            created = True
        if config.labels:
            ensure_labels(repo, config.labels)
            add_labels(repo, pr.number, config.labels)
        if created and (config.reviewers or config.team_reviewers):
            pr.create_review_request(reviewers=config.reviewers, team_reviewers=config.team_reviewers)
    except GithubException as exc:
        raise GitHubError(explain(exc, "opening the pull request")) from None
    return PullRequest(pr.number, pr.html_url, commit.branch, created)
