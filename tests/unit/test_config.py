from pathlib import Path

import pytest

from peers import scenarios
from remediate.config import load_config
from remediate.errors import UserError

ARCHITECT = scenarios.ARCHITECT_YAML


def _repo(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_architect_config_loads_unchanged(tmp_path):
    config = load_config(_repo(tmp_path, **{".architect.yaml": ARCHITECT}))
    assert config.source == ".architect.yaml"
    assert config.llm.model == "openai/gpt-4.1" and config.llm.api_model == "gpt-4.1"
    server = config.mcp.servers[0]
    assert (server.name, server.url, server.auth.token_env) == ("datadog", "http://datadog-mcp-bridge:8082/mcp",
                                                               "DD_MCP_TOKEN")
    assert config.guardrails.blocked_commands[0] == "kubectl apply"
    assert config.costs.budget_usd == 1.0
    assert config.telemetry.enabled and config.telemetry.endpoint == "http://otel-collector:4317"


def test_remediate_yaml_is_preferred_and_inputs_override(tmp_path):
    repo = _repo(tmp_path, **{".architect.yaml": ARCHITECT, ".remediate.yaml": "llm: {model: gpt-4.1-mini}\n"})
    config = load_config(repo)
    assert config.source == ".remediate.yaml" and config.llm.model == "gpt-4.1-mini"
    overridden = load_config(repo, overrides={"model": "gpt-5", "budget-usd": "0.25", "base-branch": "release"})
    assert (overridden.llm.model, overridden.costs.budget_usd, overridden.delivery.base_branch) == (
        "gpt-5", 0.25, "release")


def test_no_file_gives_defaults(tmp_path):
    config = load_config(tmp_path)
    assert config.source is None and config.guardrails.max_files_modified == 3 and config.mcp.servers == []


@pytest.mark.parametrize(("text", "expected"), [
    ("llm:\n  model: x\n  modle: y\n", ".remediate.yaml:3: llm.modle: unknown key"),
    ("guardrails:\n  max_files_modified: three\n", ".remediate.yaml:2: guardrails.max_files_modified: "),
    ("costs:\n  budget_usd: -1\n", ".remediate.yaml:2: costs.budget_usd: "),
    ("mcp:\n  servers:\n    - name: a\n      url: http://x\n      auth: {type: basic, token_env: T}\n",
     ".remediate.yaml:5: mcp.servers[0].auth.type: "),
    ("mcp:\n  servers:\n    - name: a\n", ".remediate.yaml:3: mcp.servers[0]: a server needs a url"),
    ("llm:\n  model: [x\n", ".remediate.yaml:3: invalid YAML"),
    ("- just\n- a list\n", ".remediate.yaml:1: expected a mapping"),
    ("telemetry:\n  enabled: maybe\n", ".remediate.yaml:2: telemetry.enabled: "),
    ("guardrails:\n  max_files_modified: 3\nllm: {}\nguardrails:\n  max_files_modified: 9\n",
     ".remediate.yaml:4: guardrails: duplicate key (it is already set on line 1)"),
])
def test_errors_name_the_key_path_and_line(tmp_path, text, expected):
    with pytest.raises(UserError) as err:
        load_config(_repo(tmp_path, **{".remediate.yaml": text}))
    assert err.value.one_line().startswith(expected)
    assert "\n" not in err.value.one_line()


def test_bad_override_and_missing_explicit_file(tmp_path):
    with pytest.raises(UserError, match="budget-usd"):
        load_config(tmp_path, overrides={"budget-usd": "a dollar"})
    with pytest.raises(UserError, match="file not found"):
        load_config(tmp_path, explicit="ops/remediate.yaml")


def test_test_command_accepts_a_string(tmp_path):
    config = load_config(_repo(tmp_path, **{".remediate.yaml": "tests:\n  command: python -m pytest -x\n"}))
    assert config.tests.command == ["python", "-m", "pytest", "-x"]


def test_an_invalid_value_from_an_input_names_the_input_not_the_file(tmp_path):
    (tmp_path / ".remediate.yaml").write_text("llm:\n  model: gpt-4.1\ncosts:\n  budget_usd: 1.0\n")
    with pytest.raises(UserError) as caught:
        load_config(tmp_path, overrides={"budget-usd": "-1"})
    text = str(caught.value)
    assert text.startswith("budget-usd: ") and "greater than 0" in text
    assert ".remediate.yaml" not in text


@pytest.mark.parametrize(("server", "expected"), [
    ("{name: g, command: mcp-grafana}", "stdio"),
    ("{name: g, url: 'http://bridge:8080/sse'}", "sse"),
    ("{name: g, url: 'http://bridge:8080/mcp'}", "streamable-http"),
    ("{name: g, url: 'http://bridge:8080/sse', transport: streamable-http}", "streamable-http"),
])
def test_the_mcp_transport_is_inferred_unless_given(tmp_path, server, expected):
    (tmp_path / ".remediate.yaml").write_text(f"mcp:\n  servers:\n    - {server}\n")
    assert load_config(tmp_path).mcp.servers[0].transport == expected


@pytest.mark.parametrize(("server", "message"), [
    ("{name: g, transport: stdio}", "a stdio server needs a command"),
    ("{name: g, command: x, url: 'http://a/mcp'}", "a stdio server takes command, args and env, not url"),
    ("{name: g, url: 'http://a/mcp', args: [x]}", "command, args and env are for stdio servers"),
    ("{name: g}", "a server needs a url, or a command"),
    ("{name: g, command: x, auth: {type: bearer, token_env: T}}", "not url, auth or headers"),
    ("{name: g, url: 'http://a/mcp', auth: {type: client_credentials, client_id: c}}", "client_secret_env"),
    ("{name: g, command: x, env: {T: '${GITHUB_TOKEN}'}}", "must not be passed to an MCP server"),
])
def test_mcp_server_mistakes_are_named_with_their_line(tmp_path, server, message):
    (tmp_path / ".remediate.yaml").write_text(f"llm: {{model: gpt-4.1}}\nmcp:\n  servers:\n    - {server}\n")
    with pytest.raises(UserError) as caught:
        load_config(tmp_path)
    assert caught.value.one_line().startswith(".remediate.yaml:4: mcp.servers[0]")
    assert message in caught.value.one_line()


@pytest.mark.parametrize(("text", "expected"), [
    ("hooks:\n  pre_tool_use:\n    - {command: x, matcher: '(a'}\n",
     ".remediate.yaml:3: hooks.pre_tool_use[0].matcher: not a pattern RE2 accepts"),
    ("hooks:\n  pre_tool_use:\n    - {command: x, timeot: 3}\n",
     ".remediate.yaml:3: hooks.pre_tool_use[0].timeot: unknown key"),
    ("hooks:\n  on_push:\n    - {command: x}\n", ".remediate.yaml:2: hooks.on_push: unknown key"),
    ("guardrails:\n  code_rules:\n    - {pattern: '(?<=x)y', message: m}\n",
     ".remediate.yaml:3: guardrails.code_rules[0].pattern: not a pattern RE2 accepts"),
    ("guardrails:\n  quality_gates:\n    - {command: ruff check .}\n",
     ".remediate.yaml:3: guardrails.quality_gates[0].name: is required"),
    ("guardrails:\n  sensitive_files: ['!']\n",
     ".remediate.yaml:2: guardrails.sensitive_files: '!' is not a gitignore"),
    ("guardrails:\n  code_rules:\n    - {pattern: '', message: m}\n",
     ".remediate.yaml:3: guardrails.code_rules[0].pattern: "),
    ("mcp:\n  servers:\n    - {name: dd, url: 'http://x/mcp', token: abc123abc123}\n",
     ".remediate.yaml:3: mcp.servers[0].token: a token written into the repository's config is a leaked credential"),
])
def test_hook_gate_and_rule_mistakes_are_one_line_errors_with_their_line(tmp_path, text, expected):
    with pytest.raises(UserError) as err:
        load_config(_repo(tmp_path, **{".remediate.yaml": text}))
    assert err.value.one_line().startswith(expected), err.value.one_line()


def test_architect_keys_load_renamed_or_named_as_ignored_with_their_line(tmp_path):
    config = load_config(_repo(tmp_path, **{".architect.yaml": (
        "llm: {model: openai/gpt-4.1, provider: litellm, api_base: 'http://llm:4000/v1', timeout: 30, retries: 4}\n"
        "agents: {build: {max_steps: 3}}\n"
        "mcp:\n  servers:\n    - {name: dd, url: 'http://dd/mcp', token_env: DD_TOKEN}\n"
        "guardrails: {enabled: false, sensitive_files: [secrets/*], max_commands_executed: 2}\n"
        "costs: {budget_usd: 2.0, warn_at_usd: 1.5, enabled: true, prices_file: p.json}\n"
        "hooks:\n  context_compress: [{command: echo}]\n"
        "  post_edit: [{command: 'ruff format $ARCHITECT_FILE_PATH', file_patterns: ['*.py']}]\n")}))
    assert (config.llm.base_url, config.llm.timeout_seconds, config.llm.max_retries) == ("http://llm:4000/v1", 30.0, 4)
    assert config.mcp.servers[0].auth is not None and config.mcp.servers[0].auth.token_env == "DD_TOKEN"
    assert config.costs.warn_at_usd == 1.5 and config.guardrails.max_commands_executed == 2
    ignored = dict(config.ignored)
    assert set(ignored) == {"agents (.architect.yaml line 2)", "llm.provider (.architect.yaml line 1)",
                            "costs.prices_file (.architect.yaml line 7)", "guardrails.enabled (.architect.yaml line 6)",
                            "hooks.context_compress (.architect.yaml line 9)"}
    assert "always on" in ignored["guardrails.enabled (.architect.yaml line 6)"]
    [post_edit] = config.hooks.for_event("post_tool_use")  # architect's alias: post_tool_use on the edit tools
    assert post_edit.matcher == "edit_file|write_file|apply_patch" and post_edit.file_patterns == ["*.py"]
