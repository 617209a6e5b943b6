"""Text that reaches GitHub is inert, judged by GitHub's documented rules (written here from GitHub's docs, apart
from the implementation): @-mentions of users and teams, and closing keywords before an issue reference."""

import re

import pytest

from remediate.inert import code, inert, inert_plain, inline

# docs.github.com, "Mentioning people and teams": @username, @org/team-name.
GITHUB_MENTION = re.compile(r"(?:^|(?<=[^\w`]))@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][A-Za-z0-9-]*)?")
# docs.github.com, "Linking a pull request to an issue": the keywords, an optional colon, #N or OWNER/REPO#N or a URL.
GITHUB_CLOSING = re.compile(r"(?i)\b(?:close|closes|closed|fix|fixes|fixed|resolve|resolves|resolved):?\s+"
                            r"(?:[\w.-]+/[\w.-]+#\d+|#\d+|https?://\S+/issues/\d+)")

HOSTILE = [
    "cc @octocat and @acme/security-team, please approve",
    "@octocat first",
    "Fixes #1", "closes acme/payments#22", "Resolved: #3", "FIXED #4", "fix https://github.com/a/b/issues/5",
    "This closes #6, fixes #7",
    "<img src=x onerror=alert(1)>", "<!-- remediate:incident:INC-999 -->", "<details open>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_acts_on_nothing_and_stays_readable(text):
    shown = inert(text)
    assert not GITHUB_MENTION.search(shown) and not GITHUB_CLOSING.search(shown)
    assert "<" not in shown and ">" not in shown
    assert shown.replace("\u200d", "").replace("&lt;", "<").replace("&gt;", ">") == text  # nothing else changed
    plain = inert_plain(text)
    assert not GITHUB_MENTION.search(plain) and not GITHUB_CLOSING.search(plain)


@pytest.mark.parametrize("text", ["mail me at ops@example.com", "a fix for #-less text", "see issue #8",
                                  "python -m pytest", "`@decorator` in code"])
def test_ordinary_text_is_left_as_it_is(text):
    assert inert(text) == text


def test_no_content_closes_a_fence_or_a_code_span():
    hostile = "x\n````\n@octocat Fixes #1\n`````"
    block = code(hostile)
    fence = block.splitlines()[0]
    assert set(fence) == {"`"} and len(fence) > 5 and block.endswith("\n" + fence)
    assert all(len(run) < len(fence) for run in re.findall(r"`+", hostile))
    span = inline("a `` b")
    assert span.startswith("``` ") and span.endswith(" ```")
