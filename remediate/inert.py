"""Text that reaches GitHub is inert. Pure.

Whatever came from the payload, MCP, the repository or the model and goes into a PR title or body, an issue, a
comment or a commit message is shown, never acted on: no @-mention notifies anyone, no closing keyword closes
an issue on merge, no HTML renders, no marker of ours (`<!-- remediate:... -->`) or badge can be forged. The
text stays readable: a zero-width joiner breaks what GitHub would act on, and HTML is shown as text.
"""

from __future__ import annotations

import re

ZWJ = "\u200d"

# GitHub's mentions: @user or @org/team, not inside a word or after a backtick.
_MENTION = re.compile(r"(?<![A-Za-z0-9_`])@(?=[A-Za-z0-9])")
# GitHub's closing keywords, followed by an issue reference (#1, owner/repo#1, or an issue URL).
_CLOSING = re.compile(r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(?=\s*:?\s+(?:[\w.-]+/[\w.-]+)?#\d|\s*:?\s+https?://)")
_HTML = str.maketrans({"<": "&lt;", ">": "&gt;"})


def inert(text: str) -> str:
    """Untrusted text for Markdown prose: mentions and closing keywords broken, HTML (and our markers) shown as
    text."""
    text = _MENTION.sub("@" + ZWJ, text)
    text = _CLOSING.sub(lambda m: m.group(1)[0] + ZWJ + m.group(1)[1:], text)
    return text.translate(_HTML)


def inert_plain(text: str) -> str:
    """Untrusted text for a commit message or a title (no Markdown, so no HTML to escape)."""
    text = _MENTION.sub("@" + ZWJ, text)
    return _CLOSING.sub(lambda m: m.group(1)[0] + ZWJ + m.group(1)[1:], text)


def code(text: str, lang: str = "") -> str:
    """A fenced block no content can close: the fence is longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def inline(text: str) -> str:
    """An inline code span no content can close (CommonMark: a longer backtick string, padded)."""
    text = text.replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"
