"""Delivery: a branch holding exactly the vetted change, pushed to origin, and one PR per incident."""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pathspec

from remediate.config import DeliveryConfig
from remediate.deliver import marker
from remediate.deliver.github import GitHub, GitHubError
from remediate.gitops import Git
from remediate.guard.changes import ChangeSet
from remediate.incident.payload import Incident
from remediate.inert import inert_plain, inline
from remediate.outcome import Reason, Stop
from remediate.records import PullRequest
from remediate.run import Setup

ATTEMPT_PREFIX = "hotfix-attempt/"


class DeliveryError(Stop):
    """The change could not be pushed; the branch is left as it is for humans."""


def hotfix_branch(config: DeliveryConfig, incident: Incident) -> str:
    return f"{config.branch_prefix}{incident.branch_slug}"


def attempt_branch(incident: Incident) -> str:
    """Where an escalated attempt is pushed, without a PR, for on-call to start from."""
    return f"{ATTEMPT_PREFIX}{incident.branch_slug}"


def base_branch(git: Git, config: DeliveryConfig, github: GitHub) -> str:
    """delivery.base_branch, else the branch checked out (unless it is an earlier hotfix), else the default."""
    current = git.branch
    if current and current.startswith(config.branch_prefix):
        current = None  # a checkout of an earlier hotfix is no base for the next one
    return config.base_branch or current or github.default_branch


# What git says when another push updated the ref between our look and our push.
_RACE_MARKERS = ("stale info", "fetch first", "cannot lock ref", "failed to update ref", "incorrect old value")


@dataclass(frozen=True)
class Commit:
    branch: str
    sha: str
    base_branch: str


TITLE_SUMMARY_CHARS = 90


def pr_title(incident: Incident) -> str:
    """`hotfix(<id>): <summary>`, the summary cut at a word boundary with an ellipsis when it is long."""
    summary = " ".join(incident.summary.split()) or "automated fix"
    if len(summary) > TITLE_SUMMARY_CHARS:
        cut = summary[:TITLE_SUMMARY_CHARS - 1]
        summary = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:.-") + "…"
    return inert_plain(f"hotfix({incident.id[:40]}): {summary}")


def commit_change(git: Git, changes: ChangeSet, incident: Incident, config: DeliveryConfig, base_branch: str,
                  trace_id: str, summary: str | None, branch: str | None = None, title: str | None = None) -> Commit:
    """A commit of exactly the vetted bytes on top of the base commit recorded when the run began: built in a
    fresh index from the change we hold in memory, never from the disk, the workspace's index or HEAD."""
    branch = branch or hotfix_branch(config, incident)
    git.run("check-ref-format", "--branch", branch)
    entries = git.tree_entries()
    ignored = _ignored_new_paths(git, changes, entries)
    if ignored:
        raise DeliveryError(Reason.NOT_COMMITTABLE, f"the vetted change could not be committed as vetted: {ignored} "
                            f"{'are' if len(ignored) > 1 else 'is'} ignored by .gitignore")
    with tempfile.TemporaryDirectory(prefix="remediate-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git.run("read-tree", git.base, extra_env=index)
        for change in changes:
            if change.renamed_from:
                git.run("update-index", "--force-remove", "--", change.renamed_from, extra_env=index)
            if change.after is None:
                git.run("update-index", "--force-remove", "--", change.path, extra_env=index)
                continue
            blob = git.run("hash-object", "-w", "--no-filters", "--stdin",
                           stdin=change.after.encode("utf-8")).stdout.decode().strip()
            mode = entries.get(change.renamed_from or change.path, ("100644", ""))[0]
            mode = mode if mode in ("100644", "100755") else "100644"
            git.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{change.path}", extra_env=index)
        tree = git.run("write-tree", extra_env=index).stdout.decode().strip()
    message = (f"{title or pr_title(incident)}\n\n{_no_trailers(inert_plain((summary or '').strip()[:2000]))}\n\n"
               f"Incident-Id: {incident.id}\nTrace-Id: {trace_id}\n")
    identity = {"GIT_AUTHOR_NAME": config.bot_name, "GIT_AUTHOR_EMAIL": config.bot_email,
                "GIT_COMMITTER_NAME": config.bot_name, "GIT_COMMITTER_EMAIL": config.bot_email}
    sha = git.run("commit-tree", tree, "-p", git.base, "-F", "-", stdin=message.encode(),
                  extra_env=identity).stdout.decode().strip()
    return Commit(branch, sha, base_branch)


_TRAILER_LIKE = re.compile(r"^(\s*(?:Incident|Trace)-Id)\s*:", re.IGNORECASE | re.MULTILINE)


def _no_trailers(text: str) -> str:
    """The model's summary without lines that read as our trailers: staging validation finds incidents by them."""
    return _TRAILER_LIKE.sub(r"\1 -", text)


def _ignored_new_paths(git: Git, changes: ChangeSet, entries: Mapping[str, tuple[str, str]]) -> list[str]:
    """New paths a .gitignore of the base (or of the change) covers: committing them anyway would ship a file the
    repository keeps out of version control; a person decides."""
    def gitignore(folder: str) -> str | None:
        path = f"{folder}/.gitignore" if folder else ".gitignore"
        if path in changes.changes:
            return changes.changes[path].after
        return git.base_file(path) if path in entries else None

    ignored = []
    for change in changes:
        if change.after is None or change.path in entries:
            continue
        parts = change.path.split("/")
        for depth in range(len(parts)):
            folder = "/".join(parts[:depth])
            rules = gitignore(folder)
            if rules and pathspec.GitIgnoreSpec.from_lines(rules.splitlines()).match_file("/".join(parts[depth:])):
                ignored.append(change.path)
                break
    return sorted(ignored)


def push(git: Git, commit: Commit, token: str | None, incident: Incident, bot_email: str) -> None:
    """Force-with-lease against what the remote had when we looked: a re-run replaces its own branch,
    but never one a person pushed to. A concurrent run of the same incident may win the race: its
    commit is ours too (bot author, same Incident-Id), so we lease against it and push again."""
    ref = f"refs/heads/{commit.branch}"
    for _ in range(3):
        lease = _remote_sha(git, ref, token)
        if lease and not _is_ours(git, lease, ref, token, incident, bot_email):
            raise DeliveryError(Reason.BRANCH_DIVERGED, f"{commit.branch} on origin has commits that remediate did not "
                                "make; it was left untouched for a human to merge or delete")
        if push_leased(git, commit.sha, commit.branch, lease, token):
            return
        time.sleep(random.uniform(0.2, 1.0))  # lost a race for the ref: look again, then retry
    raise DeliveryError(Reason.BRANCH_DIVERGED, f"{commit.branch} kept changing on origin while we pushed")


def push_leased(git: Git, sha: str, branch: str, lease: str, token: str | None) -> bool:
    """Push `sha` to the branch if origin still has `lease` there: True when pushed, False when another push
    won the race for the ref; a refusal (protected branch, a server hook) is PUSH_REJECTED."""
    ref = f"refs/heads/{branch}"
    done = git.run("push", "-q", "--porcelain", f"--force-with-lease={ref}:{lease}", "--", git.origin, f"{sha}:{ref}",
                   token=git.token_for_origin(token), check=False)
    if done.returncode == 0:
        return True
    message = (done.stderr + done.stdout).decode("utf-8", errors="replace")
    if any(marker in message for marker in _RACE_MARKERS):
        return False
    why = [line.strip() for line in message.splitlines()
           if line.startswith("remote:") or "rejected" in line or line.startswith(("error:", "fatal:"))]
    raise DeliveryError(Reason.PUSH_REJECTED, f"origin refused the push of {branch} (protected branch or a server "
                        f"hook): {' / '.join(why)[:500] or 'rejected'}")


def _remote_sha(git: Git, ref: str, token: str | None) -> str:
    remote = git.run("ls-remote", "--", git.origin, ref, token=git.token_for_origin(token)).stdout.decode().split()
    return remote[0] if remote else ""


def _is_ours(git: Git, sha: str, ref: str, token: str | None, incident: Incident, bot_email: str) -> bool:
    git.run("fetch", "-q", "--no-tags", "--", git.origin, f"+{ref}:refs/remediate/lease",
            token=git.token_for_origin(token))
    return bool(our_commits(git, bot_email, incident.id, "-1", sha))


def our_commits(git: Git, bot_email: str, incident_id: str, *revisions: str) -> list[str]:
    """The commits among `revisions` (git log arguments) that remediate made for the incident: by the bot, with
    its Incident-Id trailer."""
    out = git.out("log", "--format=%H%x00%ae%x00%(trailers:key=Incident-Id,valueonly)%x1e", *revisions)
    found = []
    for entry in out.split("\x1e"):
        fields = entry.strip().split("\0")
        if len(fields) == 3 and fields[1] == bot_email and fields[2].strip() == incident_id:
            found.append(fields[0])
    return found


PRE_EXISTING_LABEL = "pre-existing-failures"


def open_or_update_pr(github: GitHub, commit: Commit, incident: Incident, body: str, config: DeliveryConfig,
                      what_changed: str = "", flagged: bool = False) -> PullRequest:
    existing = github.open_pull_request(commit.branch)
    created = False
    if existing:
        pr = existing
        github.edit_body(pr.number, marker.carried(existing.body, body))
        github.comment(pr.number, f"remediate re-ran for incident {inline(incident.id)} and force-pushed this branch "
                                  f"to `{commit.sha[:12]}`; the description is updated.\n\n{what_changed}".strip())
    else:
        opened = github.create_pull_request(commit.base_branch, commit.branch, pr_title(incident), body,
                                            config.draft or flagged)
        if opened is None:  # a concurrent run (or a retried POST that did land) opened it first: update that one
            pr = github.open_pull_request(commit.branch) or _missing(commit.branch)
            github.edit_body(pr.number, body)
        else:
            pr, created = opened, True
    labels = [*config.labels, *([PRE_EXISTING_LABEL] if flagged else [])]
    if labels:
        github.ensure_labels(labels, "d93f0b")
        github.add_labels(pr.number, labels)
    if created and (config.reviewers or config.team_reviewers):
        github.request_reviewers(pr.number, config.reviewers, config.team_reviewers)
    return PullRequest(pr.number, pr.url, commit.branch, created)


def _missing(branch: str) -> NoReturn:
    raise GitHubError(f"GitHub API 422 while opening the pull request for {branch}, and no open one was found")


def deliver(setup: Setup, github: GitHub, changes: ChangeSet, token: str | None, trace_id: str, summary: str | None,
            texts: Callable[[], tuple[str, str]], after_commit: Callable[[], None],
            flagged: bool = False) -> PullRequest:
    """The deliver stage: commit the vetted bytes, push, open or update the PR. `texts` renders the PR body and
    the re-run comment once the commit exists; `flagged` (tests that failed before the fix too) makes a new PR a
    draft with the PRE_EXISTING_LABEL."""
    config, span = setup.config.delivery, setup.telemetry.span
    try:
        base = base_branch(setup.git, config, github)
        with span("git commit"):
            commit = commit_change(setup.git, changes, setup.incident, config, base, trace_id, summary)
        after_commit()  # the checkout's files as before, as a checkout of the branch and back would leave it
        with span("git push", {"remediate.branch": commit.branch}):
            push(setup.git, commit, token, setup.incident, config.bot_email)
    except DeliveryError as exc:
        raise Stop(exc.reason, f"{exc.detail}. The fix and its passing tests are in the report.") from None
    body, what_changed = texts()
    with span("github pull_request"):
        return open_or_update_pr(github, commit, setup.incident, body, config, what_changed, flagged)
