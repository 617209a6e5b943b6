import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediate.secrets import REDACTED, Redactor, scrubbed_env


@pytest.mark.parametrize("text", [
    "key AKIAIOSFODNN7EXAMPLE used",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "curl -H 'authorization: token abcdef123456'",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    "OPENAI key sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "slack xoxb-1234567890-abcdefghij",
    "password=hunter2hunter2",
])
def test_common_secret_formats_are_redacted(text):
    redacted = Redactor()(text)
    assert REDACTED in redacted
    for word in ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "ghp_abc", "github_pat_11", "eyJhbGci", "abcdef123456",
                 "MIIEowIBAAKCAQEA", "sk-proj-abc", "xoxb-123", "hunter2"):
        assert word not in redacted


def test_registered_values_are_redacted_everywhere():
    redact = Redactor()
    redact.add("my-mcp-token-value", None, "abc")
    assert redact("x my-mcp-token-value y") == f"x {REDACTED} y"
    assert redact("abc stays") == "abc stays"  # too short to be a credential; redacting it would shred text
    assert redact.deep({"a": ["my-mcp-token-value", 1], "b": {"c": "my-mcp-token-value"}}) == {
        "a": [REDACTED, 1], "b": {"c": REDACTED}}


def test_ordinary_text_is_untouched():
    text = "Memory leak in UserService.process_queue() caused by commit abc123; rss=900MiB"
    assert Redactor()(text) == text


def test_child_environment_is_an_allowlist():
    env = {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "GITHUB_TOKEN": "t", "OPENAI_API_KEY": "k",
           "INPUT_GITHUB-TOKEN": "t", "DD_MCP_TOKEN": "m", "AWS_SECRET_ACCESS_KEY": "s", "LC_ALL": "C",
           "DATABASE_URL": "postgres://u:p@h/db", "APP_MODE": "test"}
    assert scrubbed_env(env) == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C"}
    assert scrubbed_env(env, passthrough=["APP_MODE"])["APP_MODE"] == "test"


def test_a_value_found_by_its_format_is_known_from_then_on():
    from remediate.secrets import Redactor

    redact = Redactor()
    key = "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD"
    assert redact(f"aws_secret_access_key={key}") == "aws_secret_access_key=[REDACTED]"
    assert redact(f"the model repeats {key} bare") == "the model repeats [REDACTED] bare"
    # The generic `password=` form is redacted where seen, but what follows it is not learned: source code.
    assert redact("password = config.get('db')") == "password = [REDACTED]'db')"
    assert redact("config.get('db') elsewhere") == "config.get('db') elsewhere"


def test_known_secrets_are_found_encoded_reversed_and_split():
    import base64

    from remediate.secrets import contains_secret

    value = "tok_0123456789abcdefghij"
    for smuggled in (value, value[::-1], value.encode().hex(), value.encode().hex().upper(),
                     base64.b64encode(value.encode()).decode(), base64.urlsafe_b64encode(value.encode()).decode(),
                     base64.b64encode(value.encode()).decode().rstrip("="),
                     f'k = ("{value[:10]}"\n     "{value[10:]}")', f"k = '{value[:7]}' + '{value[7:]}'"):
        assert contains_secret(f"x = 1\n{smuggled}\n", [value]), smuggled
    assert not contains_secret("an ordinary line of code\nreturn total", [value])


SECRET_SHAPES = ["AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key =\n wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                 "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "Authorization:\n  Bearer eyJhbGciOiJIUzI1NiJ9.p.s",
                 "sk-proj-abcdefghijklmnopqrstuvwxyz123456", "xoxb-1234567890-abcdefghij", "PASSWORD: 'hunter2hunter2'",
                 "AIzaSyA1234567890abcdefghijklmnopqrstuv", "bearer abcdefghijklmnop", "Api-Key=0123456789abcdef",
                 "ACCESS_TOKEN = tok_0123456789"]


def _reference(text: str, known: list[str]) -> str:
    """The whole-text algorithm: every format over all of the text."""
    from remediate.secrets import LEARNED_PATTERNS, SECRET_PATTERNS
    values = set(known)
    for pattern in SECRET_PATTERNS[:LEARNED_PATTERNS]:
        for match in pattern.finditer(text):
            value = match.group(0)[len(match.group(1)):] if match.groups() else match.group(0)
            if len(value) >= 12:
                values.add(value)
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1199), st.sampled_from(SECRET_SHAPES), st.sampled_from(["", " ", "x", "\n"])),
                max_size=12), st.integers(0, 3))
def test_large_texts_are_redacted_exactly_as_the_whole_text_algorithm_does(placements, seed):
    """The large-text path (literals first, regexes on the lines around them) changes speed, not results."""
    lines = [f"2026-11-25T03:00:{i % 60:02d}Z INFO svc GET /api/v1/users/{i * 7919 % 10**6} 200 {seed}ms"
             for i in range(1200)]
    for line_number, secret, glue in placements:
        lines[line_number] = lines[line_number] + glue + secret
    text = "\n".join(lines)
    assert len(text) > 64 * 1024
    assert Redactor()(text) == _reference(text, [])
    known = Redactor()
    known.add("svc GET /api/v1/users/7919")
    assert known(text) == _reference(text, ["svc GET /api/v1/users/7919"])
