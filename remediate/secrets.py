"""Secrets never leave: redaction of known values and common formats, and scrubbed child environments."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

REDACTED = "[REDACTED]"

# Formats that show up in logs and stack traces; each is replaced whole.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{40}"),
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"(?i)(authorization\s*[:=]\s*(?:bearer|basic|token)\s+)[^\s\"',;]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(?i)((?:password|passwd|secret|api[_-]?key|access[_-]?token)\s*[=:]\s*[\"']?)[^\s\"',;]{6,}"),
)
# The formats above whose matches are credentials by their shape, learned as known values when found. Not the
# last one: `password = config.get(...)` in source code must not make `config.get(...)` a secret.
LEARNED_PATTERNS = len(SECRET_PATTERNS) - 1
# For each format after the first, the literals every match of it starts with (lower case: looked for in the
# lower-cased text, for the formats that ignore case). A line holding none of them holds no match, so large
# texts are searched for these with str.find and only the lines around a hit go through the regexes. A match
# may run on to the next lines only through `\s*`: two lines after a hit are included.
_NEEDLES: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), False),
    (("AKIA", "ASIA"), False),
    (("aws_secret_access_key",), True),
    (("sk-",), False),
    (("xox",), False),
    (("AIza",), False),
    (("authorization",), True),
    (("bearer",), True),
    (("passw", "secret", "apikey", "api_key", "api-key", "accesstoken", "access_token", "access-token"), True),
)
_PRIVATE_KEY_NEEDLE = "-----BEGIN "
LARGE_TEXT = 64 * 1024  # below this the regexes run on the whole text: finding needles would not pay
_LINES_AFTER = 2

# Variables a child process may inherit; everything else (tokens, keys, INPUT_*) stays behind.
_SAFE_ENV = frozenset({
    "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "TERM", "USER", "LOGNAME", "SHELL",
    "PWD", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    "CI", "GITHUB_ACTIONS", "RUNNER_TEMP", "RUNNER_OS", "RUNNER_ARCH", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "NODE_PATH", "JAVA_HOME", "GOPATH", "GOROOT", "GOCACHE", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
})
_SAFE_PREFIXES = ("LC_",)
_SECRET_NAME = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE|AUTH)")


def encodings(value: str) -> set[str]:
    """The forms a known secret may be smuggled in: itself, reversed, base64 (standard and URL-safe, with and
    without padding), hex (both cases)."""
    raw = value.encode()
    forms = {value, value[::-1], raw.hex(), raw.hex().upper()}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    return {f for f in forms if len(f) >= 6}


def _joined(text: str) -> str:
    """The text with what may split a value across lines removed: whitespace, quotes, `+`, backslashes."""
    return re.sub(r"[\s'\"+\\]", "", text)


def contains_secret(text: str, values: Iterable[str] = ()) -> bool:
    """A known value in any of its encodings, also when split across lines or string pieces, or a known format."""
    if any(p.search(text) for p in SECRET_PATTERNS):
        return True
    joined = _joined(text)
    return any(form in text or form in joined for value in values if value for form in encodings(value))


@dataclass
class Redactor:
    """Replaces every registered secret value and every known secret format."""

    values: set[str] = field(default_factory=set)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            # Short values would shred ordinary text; they are not credentials worth the damage.
            if secret and len(secret) >= 6:
                self.values.add(secret)

    def __call__(self, text: str) -> str:
        """Known values out, then known formats; what a format finds becomes a known value for the rest of the
        run, so the model repeating it later, without what made it recognisable, is caught too. A large text
        (incident logs) is searched for the formats' literals first, and only the lines around them are
        matched against the formats: the same result, at the speed of str.find."""
        if not text:
            return text
        spans = _spans(text) if len(text) >= LARGE_TEXT else None
        for start, end in spans if spans is not None else [(0, len(text))]:
            self._learn(text[start:end])
        replaced = text
        for secret in sorted(self.values, key=len, reverse=True):
            replaced = replaced.replace(secret, REDACTED)
        if spans is None:
            return _substituted(replaced)
        if replaced is not text:  # a known value was in it: where the formats may match moved
            spans = _spans(replaced)
            if spans is None:
                return _substituted(replaced)
        out, position = [], 0
        for start, end in spans:
            out += [replaced[position:start], _substituted(replaced[start:end])]
            position = end
        out.append(replaced[position:])
        return "".join(out)

    def _learn(self, text: str) -> None:
        for pattern in SECRET_PATTERNS[:LEARNED_PATTERNS]:
            for match in pattern.finditer(text):
                value = match.group(0)[len(match.group(1)):] if match.groups() else match.group(0)
                if len(value) >= 12:
                    self.add(value)

    def deep(self, value: object) -> object:
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


def _substituted(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def _spans(text: str) -> list[tuple[int, int]] | None:
    """The stretches of a large text that may hold a match of a format, merged, in order; None when the text is
    better matched whole (a private key block spans lines; lower-casing changed the text's length)."""
    if _PRIVATE_KEY_NEEDLE in text:
        return None
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    hits: list[int] = []
    for needles, ignore_case in _NEEDLES:
        haystack = lowered if ignore_case else text
        for needle in needles:
            at = haystack.find(needle)
            while at != -1:
                hits.append(at)
                at = haystack.find(needle, at + 1)
    spans: list[tuple[int, int]] = []
    for at in sorted(hits):
        start = text.rfind("\n", 0, at) + 1
        end = at
        for _ in range(_LINES_AFTER + 1):
            end = text.find("\n", end + 1)
            if end == -1:
                end = len(text)
                break
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a credential."""
    return bool(_SECRET_NAME.search(name))


def scrubbed_env(environ: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    """An allowlisted environment for child processes; `passthrough` names are the config's choice."""
    allowed = set(passthrough)
    env = {}
    for name, value in environ.items():
        safe = (name in _SAFE_ENV or name.startswith(_SAFE_PREFIXES)) and not _SECRET_NAME.search(name)
        if name in allowed or safe:
            env[name] = value
    return env
