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
        run, so the model repeating it later, without what made it recognisable, is caught too."""
        if not text:
            return text
        for pattern in SECRET_PATTERNS[:LEARNED_PATTERNS]:
            for match in pattern.finditer(text):
                value = match.group(0)[len(match.group(1)):] if match.groups() else match.group(0)
                if len(value) >= 12:
                    self.add(value)
        for secret in sorted(self.values, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        for pattern in SECRET_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text

    def deep(self, value: object) -> object:
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


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
