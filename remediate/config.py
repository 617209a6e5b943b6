"""Configuration: `.remediate.yaml`, else the architect-compatible `.architect.yaml`; inputs override.

Validation is the point here, so these are pydantic models; every error names its key path and
YAML line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from remediate.errors import UserError
from remediate.secrets import looks_secret

CONFIG_FILES = (".remediate.yaml", ".remediate.yml", ".architect.yaml", ".architect.yml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LLMConfig(_Model):
    model: str = "openai/gpt-4.1"
    api_key_env: str = "OPENAI_API_KEY"
    base_url: str | None = None
    stream: bool = False
    max_tokens: int = Field(default=4096, ge=64, le=128_000)
    temperature: float | None = None
    timeout_seconds: float = Field(default=120, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)

    @property
    def api_model(self) -> str:
        """The name sent to the API: architect's `openai/` provider prefix is not part of it."""
        return self.model.split("/", 1)[1] if self.model.startswith("openai/") else self.model


class MCPAuth(_Model):
    """`bearer`: a token from `token_env`. `client_credentials`: OAuth 2.0 client credentials (a CI job has no
    browser), the secret from `client_secret_env`; `private_key_jwt`: the same grant, the client proving itself
    with a JWT signed by the PEM key in `private_key_env`. The token endpoint is discovered from the server."""
    type: Literal["bearer", "client_credentials", "private_key_jwt"] = "bearer"
    token_env: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    private_key_env: str | None = None
    signing_algorithm: Literal["RS256", "ES256", "PS256", "EdDSA"] = "RS256"
    scope: str | None = None
    issuer: str | None = None  # the authorization server the client belongs to; tokens are asked of it only
    token_endpoint_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"

    @model_validator(mode="after")
    def _complete(self) -> MCPAuth:
        if self.type == "bearer" and not self.token_env:
            raise ValueError("bearer auth needs token_env (the variable holding the token)")
        if self.type == "client_credentials" and not (self.client_id and self.client_secret_env):
            raise ValueError("client_credentials auth needs client_id and client_secret_env")
        if self.type == "private_key_jwt" and not (self.client_id and self.private_key_env):
            raise ValueError("private_key_jwt auth needs client_id and private_key_env")
        return self


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MCPPrefetch(_Model):
    """A tool called before the model starts, its result condensed into the first prompt. String values of
    `arguments` may use {incident_id}, {service}, {commit} and {severity} from the incident."""
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class MCPServerConfig(_Model):
    """A remote server (`url`, streamable HTTP or the legacy HTTP+SSE transport) or a local one started over
    stdio (`command`, `args`, `env`). Header and env values may name variables as `${NAME}`; nothing else of
    the action's environment reaches a stdio server."""
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    url: str | None = None
    transport: Literal["streamable-http", "sse", "stdio"] | None = None  # inferred when omitted
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    auth: MCPAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] | None = None
    # A tool name (its arguments are matched from the incident by name) or {tool, arguments}.
    prefetch: list[str | MCPPrefetch] = Field(default_factory=lambda: ["get_incident_logs"])
    connect_timeout_seconds: float = Field(default=15, gt=0)
    timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _infer_transport(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("transport") is None:
            url = data.get("url")
            inferred = ("stdio" if data.get("command") else
                        "sse" if isinstance(url, str) and url.rstrip("/").endswith("/sse") else "streamable-http")
            data = {**data, "transport": inferred}
        return data

    @model_validator(mode="after")
    def _transport(self) -> MCPServerConfig:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs a command")
            if self.url or self.auth or self.headers:
                raise ValueError("a stdio server takes command, args and env, not url, auth or headers")
        else:
            if not self.url:
                raise ValueError("a server needs a url, or a command to start it over stdio")
            if self.command or self.args or self.env:
                raise ValueError("command, args and env are for stdio servers; this one has a url")
        for value in [*self.headers.values(), *self.env.values()]:
            for name in _ENV_REFERENCE.findall(value):
                if name in ("GITHUB_TOKEN", "INPUT_GITHUB-TOKEN"):
                    raise ValueError(f"${{{name}}} must not be passed to an MCP server")
        return self

    def referenced_variables(self) -> dict[str, str]:
        """Variables named in header and env values, each with the header or env name it fills."""
        pairs = [*self.headers.items(), *self.env.items()]
        return {ref: key for key, value in pairs for ref in _ENV_REFERENCE.findall(value)}

    def expand(self, value: str, environ: Mapping[str, str]) -> str:
        return _ENV_REFERENCE.sub(lambda m: environ.get(m.group(1), ""), value)

    @property
    def location(self) -> str:
        """How messages name where the server is: its URL, or the command that starts it."""
        return self.url or " ".join([self.command or "", *self.args]).strip()


class MCPConfig(_Model):
    servers: list[MCPServerConfig] = Field(default_factory=list)
    # The condensed logs in the prompt, estimated at 4 characters a token (no tokenizer: they download data).
    log_budget_tokens: int = Field(default=6000, ge=250)

    @field_validator("servers")
    @classmethod
    def _unique_names(cls, servers: list[MCPServerConfig]) -> list[MCPServerConfig]:
        names = [s.name for s in servers]
        if len(names) != len(set(names)):
            raise ValueError("server names must be unique")
        return servers


def _re2_pattern(value: str) -> str:
    import re2
    try:
        re2.compile(value)
    except re2.error as exc:
        raise ValueError(f"not a pattern RE2 accepts (no backreferences or lookaround): {exc}") from None
    return value


def _gitignore_patterns(values: list[str]) -> list[str]:
    import pathspec
    for value in values:
        try:
            pathspec.GitIgnoreSpec.from_lines([value])
        except Exception as exc:  # pathspec's own error types differ by version
            raise ValueError(f"{value!r} is not a gitignore pattern: {exc}") from None
    return values


class QualityGateConfig(_Model):
    """architect's quality gate: a shell command run, in the sandbox, when the model calls `finish`."""
    name: str = Field(min_length=1, max_length=80)
    command: str = Field(min_length=1)
    required: bool = True
    timeout: int = Field(default=60, ge=1, le=600)
    env: list[str] = Field(default_factory=list)  # variables passed through from the action's environment


class CodeRuleConfig(_Model):
    """architect's code rule: a regex on the lines a change adds. `file_patterns` (ours) limits it to paths."""
    pattern: str = Field(min_length=1)
    message: str
    severity: Literal["warn", "block"] = "warn"
    file_patterns: list[str] = Field(default_factory=list)

    _pattern = field_validator("pattern")(_re2_pattern)
    _paths = field_validator("file_patterns")(_gitignore_patterns)


class GuardrailsConfig(_Model):
    # architect's switch: our guardrails are always on, so `false` is named as ignored (config notices).
    enabled: bool = True
    max_files_modified: int = Field(default=3, ge=1)
    max_lines_changed: int = Field(default=200, ge=1)
    protected_files: list[str] = Field(default_factory=lambda: [
        "*.env*", "config/production.*", "k8s/production/**", "Dockerfile*", "*.lock"])
    blocked_commands: list[str] = Field(default_factory=list)
    allowed_commands: list[str] = Field(default_factory=list)
    edit_scope: Literal["suspects", "repo"] = "suspects"
    extra_scope: list[str] = Field(default_factory=list)
    max_refusals: int = Field(default=5, ge=1)
    # architect's: neither readable by the model's tools nor writable.
    sensitive_files: list[str] = Field(default_factory=list)
    max_commands_executed: int | None = Field(default=None, ge=0)
    # architect's; remediate always runs the affected tests after the change, so it holds whatever it says.
    require_test_after_edit: bool = False
    quality_gates: list[QualityGateConfig] = Field(default_factory=list)
    code_rules: list[CodeRuleConfig] = Field(default_factory=list)

    _paths = field_validator("protected_files", "sensitive_files", "extra_scope")(_gitignore_patterns)


class CostsConfig(_Model):
    budget_usd: float = Field(default=1.00, gt=0)
    # architect's: when the spend reaches it, budget_warning hooks run (default: 80% of budget_usd).
    warn_at_usd: float | None = Field(default=None, gt=0)
    prices: dict[str, dict[Literal["input", "cached_input", "output"], float]] = Field(default_factory=dict)


class AgentConfig(_Model):
    max_llm_calls: int = Field(default=30, ge=1)
    max_wall_seconds: float = Field(default=900, gt=0)
    # The whole first prompt (system prompt, tools, context), estimated at 4 characters a token: the code the
    # evidence points at is kept, the logs get what is left (at most mcp.log_budget_tokens).
    first_prompt_tokens: int = Field(default=4000, ge=1000)


class TestsConfig(_Model):
    mode: Literal["auto", "all", "command"] = "auto"  # auto: affected tests; all: the suite; command: as written
    command: list[str] = Field(default_factory=lambda: ["python", "-m", "pytest"])
    map: dict[str, list[str]] = Field(default_factory=dict)  # changed-path glob -> test files or globs
    junit_glob: str | None = None  # report files the command writes (e.g. target/surefire-reports/*.xml)
    timeout_seconds: float = Field(default=600, gt=0)
    env: list[str] = Field(default_factory=list)
    when_none_selected: Literal["run_all", "escalate"] = "run_all"
    # Stop a pytest run once this many tests failed: a wrong fix is known sooner. When every failure seen was
    # already failing before the fix, the run is repeated whole before anything is decided. 0: never stop.
    max_failures: int = Field(default=5, ge=0)
    # A map of which tests ran which functions, recorded on the default branch (`remediate coverage-map`);
    # with it, a change inside function bodies runs only the tests that ran those functions.
    coverage_map: str | None = None
    # Run once before any test, e.g. `pip install -r requirements-dev.txt`: inside the action's container only
    # pytest is installed, so a project's own test dependencies come from here.
    setup: list[str] = Field(default_factory=list)

    @field_validator("command", "setup", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        import shlex
        return shlex.split(value) if isinstance(value, str) else value


class TelemetryConfig(_Model):
    enabled: bool = False
    # architect's meaning: `otlp` is OTLP over gRPC unless `protocol` (or OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL)
    # says http/protobuf; `json-file` appends one JSON span a line to `trace_file`.
    exporter: Literal["otlp", "console", "json-file", "none"] = "otlp"
    endpoint: str | None = None
    trace_file: str | None = None
    protocol: Literal["grpc", "http/protobuf"] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    flush_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    trace_url_template: str | None = None


class DeliveryConfig(_Model):
    base_branch: str | None = None
    branch_prefix: str = Field(default="hotfix/", pattern=r"^[A-Za-z0-9._/-]{1,40}$")
    labels: list[str] = Field(default_factory=lambda: ["hotfix", "auto-generated"])
    draft: bool = False
    reviewers: list[str] = Field(default_factory=list)
    team_reviewers: list[str] = Field(default_factory=list)
    bot_name: str = "remediate[bot]"
    bot_email: str = "remediate-bot@users.noreply.github.com"


class PagerDutyConfig(_Model):
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"
    url: str = "https://events.pagerduty.com/v2/enqueue"  # events.eu.pagerduty.com for EU accounts
    severity: Literal["critical", "error", "warning", "info"] = "error"


class WebhookConfig(_Model):
    url_env: str = "REMEDIATE_WEBHOOK_URL"  # the URL often carries a token: it is read from the environment
    headers: dict[str, str] = Field(default_factory=dict)


class SlackConfig(_Model):
    webhook_url_env: str = "SLACK_WEBHOOK_URL"


class EscalationConfig(_Model):
    github_issue: bool = True
    labels: list[str] = Field(default_factory=lambda: ["incident", "needs-human"])
    pagerduty: PagerDutyConfig | None = None
    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    push_attempt: bool = False  # push the attempted change to hotfix-attempt/<id>, without a PR
    timeout_seconds: float = Field(default=10, gt=0, le=60)


class TriggerConfig(_Model):
    event_type: str = "incident"


_COMPARISON = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


def comparison(text: str) -> tuple[str, float]:
    """A signal's `healthy`: an operator and a number, e.g. "< 300000000"."""
    match = _COMPARISON.match(text)
    if not match:
        raise ValueError(f"expected a comparison with a number, e.g. \"< 300000000\" or \">= 0.99\"; operators: "
                         f"{' '.join(OPERATORS)}")
    return match[1], float(match[2])


class ReviewConfig(_Model):
    """Runs on the hotfix PR after it opened: a `/remediate <instruction>` comment by someone with write access,
    and, when opted in, a review that requests changes (docs/review-and-validation.md)."""
    command: str = Field(default="/remediate", pattern=r"^[^\s`]{1,40}$")
    on_changes_requested: bool = False
    max_review_comments: int = Field(default=20, ge=0, le=100)  # the PR's review comments put in the prompt


class SignalConfig(_Model):
    """One metric watched after a deployment: an MCP tool call, a value read from its answer, a threshold."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,60}$")
    server: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)  # strings may use {service}, {incident_id}, {environment}
    value: str | None = None  # a JSONPath (RFC 9535) into the tool's structured content
    regex: str | None = None  # or an RE2 pattern on its text; the first group (else the match) is the number
    healthy: str  # a comparison: "< 300000000", ">= 0.99", "== 0"

    @field_validator("value")
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        if value is not None:
            import jsonpath
            try:
                jsonpath.compile(value)
            except jsonpath.JSONPathError as exc:
                raise ValueError(f"not a JSONPath: {str(exc).splitlines()[0]}") from None
        return value

    _regex = field_validator("regex")(lambda v: v if v is None else _re2_pattern(v))

    @field_validator("healthy")
    @classmethod
    def _comparison(cls, value: str) -> str:
        comparison(value)  # raises ValueError naming what is wrong
        return value

    @model_validator(mode="after")
    def _one_reader(self) -> SignalConfig:
        if (self.value is None) == (self.regex is None):
            raise ValueError("give exactly one of value (a JSONPath) and regex")
        return self


MAX_SAMPLES = 2000


class ValidationConfig(_Model):
    """Staging validation after a deployment (docs/review-and-validation.md)."""
    environment: str | list[str] = "staging"
    window_seconds: float = Field(default=600, gt=0, le=6 * 3600)
    interval_seconds: float = Field(default=60, ge=0.05)
    consecutive: int = Field(default=3, ge=1, le=1000)
    signals: list[SignalConfig] = Field(default_factory=list)

    @property
    def environments(self) -> tuple[str, ...]:
        return (self.environment,) if isinstance(self.environment, str) else tuple(self.environment)

    @model_validator(mode="after")
    def _fits(self) -> ValidationConfig:
        if self.interval_seconds > self.window_seconds:
            raise ValueError("interval_seconds is longer than window_seconds: not one sample would be taken")
        samples = int(self.window_seconds // self.interval_seconds) + 1
        if samples > MAX_SAMPLES:
            raise ValueError(f"the window holds {samples} samples a signal; at most {MAX_SAMPLES}: sample less often")
        if samples < self.consecutive:
            raise ValueError(f"the window holds {samples} samples, fewer than consecutive ({self.consecutive})")
        names = [s.name for s in self.signals]
        if len(set(names)) != len(names):
            raise ValueError("signal names must be unique")
        return self


HOOK_EVENTS = ("pre_tool_use", "post_tool_use", "pre_llm_call", "post_llm_call", "session_start", "session_end",
               "on_error", "agent_complete", "budget_warning", "context_compress")
# Pre-event hooks decide: a block (exit 2) stops what was about to happen, and an error or timeout blocks too
# unless the hook says `on_hook_error: allow`.
PRE_EVENTS = ("pre_tool_use", "pre_llm_call")
EDIT_TOOLS = "edit_file|write_file|apply_patch"


class HookConfig(_Model):
    """architect's hook: a shell command line for one event, run in the sandbox with the event as JSON on stdin
    and ARCHITECT_*/REMEDIATE_* variables."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
    command: str = Field(min_length=1)
    name: str = ""
    matcher: str = "*"  # a regex on the tool name (anchored at the start, as architect's), `*` all
    file_patterns: list[str] = Field(default_factory=list)
    timeout: int = Field(default=10, ge=1, le=300)
    async_: bool = Field(default=False, alias="async")
    enabled: bool = True
    on_hook_error: Literal["block", "allow"] = "block"  # ours: what a failing pre-event hook means
    env: list[str] = Field(default_factory=list)  # ours: variables passed through; nothing else of ours is

    _matcher = field_validator("matcher")(lambda v: v if v == "*" else _re2_pattern(v))

    @property
    def label(self) -> str:
        """How records name it: its name, else its command's first word."""
        return self.name or (self.command.split() or ["hook"])[0][:60]


class HooksConfig(_Model):
    pre_tool_use: list[HookConfig] = Field(default_factory=list)
    post_tool_use: list[HookConfig] = Field(default_factory=list)
    pre_llm_call: list[HookConfig] = Field(default_factory=list)
    post_llm_call: list[HookConfig] = Field(default_factory=list)
    session_start: list[HookConfig] = Field(default_factory=list)
    session_end: list[HookConfig] = Field(default_factory=list)
    on_error: list[HookConfig] = Field(default_factory=list)
    agent_complete: list[HookConfig] = Field(default_factory=list)
    budget_warning: list[HookConfig] = Field(default_factory=list)
    context_compress: list[HookConfig] = Field(default_factory=list)
    post_edit: list[HookConfig] = Field(default_factory=list)  # architect's alias: post_tool_use on edit tools

    def for_event(self, event: str) -> list[HookConfig]:
        """The enabled hooks of an event, in order; post_edit hooks join post_tool_use for the edit tools."""
        hooks = list(getattr(self, event))
        if event == "post_tool_use":
            hooks += [h.model_copy(update={"matcher": EDIT_TOOLS if h.matcher == "*" else h.matcher})
                      for h in self.post_edit]
        return [h for h in hooks if h.enabled]

    def all(self) -> list[HookConfig]:
        return [h for event in HOOK_EVENTS for h in self.for_event(event)]


class Config(_Model):
    llm: LLMConfig = Field(default_factory=LLMConfig)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    tests: TestsConfig = Field(default_factory=TestsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    source: str | None = None
    source_path: str | None = None  # the file read, relative to the repository root (None: none, or outside it)
    # architect keys that load but that remediate does not act on: (key, why), named once in the log and report.
    ignored: tuple[tuple[str, str], ...] = ()

    def secret_sources(self) -> tuple[list[str], list[str]]:
        """The variables whose values are credentials (LLM key, MCP auth, escalation channels, variables a
        header uses or whose names say so), and the literal header values: all redacted and masked."""
        names = [self.llm.api_key_env]
        values: list[str] = []
        for server in self.mcp.servers:
            if server.auth:
                names += [server.auth.token_env, server.auth.client_secret_env, server.auth.private_key_env]
            # A header value is a credential more often than not; an env value when its name says so.
            names += [ref for ref, key in server.referenced_variables().items()
                      if key in server.headers or looks_secret(ref) or looks_secret(key)]
            values += list(server.headers.values())
        for command in [*self.hooks.all(), *self.guardrails.quality_gates]:
            names += list(command.env)  # given to a command on purpose: kept out of everything else
        escalation = self.escalation
        names += [escalation.pagerduty.routing_key_env if escalation.pagerduty else None,
                  escalation.webhook.url_env if escalation.webhook else None,
                  escalation.slack.webhook_url_env if escalation.slack else None]
        return [n for n in names if n], values


# architect's sections that remediate loads and does not act on, with the reason (docs/configuration.md).
ARCHITECT_SECTIONS = {
    "language": "remediate's messages are English; there is nothing to translate",
    "agents": "one agent with a fixed prompt and tool set (docs/tools.md); a custom agent could bypass the tool list",
    "logging": "the Actions log (groups, annotations) and the JSON report are the run's record",
    "workspace": "the workspace is the checkout (GITHUB_WORKSPACE)",
    "indexer": "the first prompt is built from the evidence; the model searches with search_code",
    "context": "a run is bounded by agent.max_llm_calls and llm.max_tokens; nothing is compressed",
    "evaluation": "the verdict is the tests and the regression proof, not the model's own evaluation",
    "commands": "commands run only when guardrails.allowed_commands lists them (docs/safety.md)",
    "llm_cache": "a cached answer would replay a fix made for another tree; every run asks the model",
    "memory": "each incident starts clean: nothing a model wrote in an earlier run reaches this one",
    "skills": "instructions from the repository would become the model's; the repository is untrusted data here",
    "sessions": "one run is one incident; there is nothing to resume",
    "ralph": "one fix a run, bounded by costs.budget_usd; no iteration loop",
    "parallel": "one agent an incident",
    "checkpoints": "the change is held until vetted and committed once",
    "auto_review": "the reviewers are the people on the pull request",
    "health": "not part of fixing an incident",
}
# Keys inside sections remediate shares with architect: (section, key) -> why it is not acted on.
ARCHITECT_KEYS = {
    ("llm", "provider"): "remediate talks to OpenAI-compatible endpoints (llm.base_url)",
    ("llm", "mode"): "remediate talks to OpenAI-compatible endpoints directly or through llm.base_url",
    ("llm", "prompt_caching"): "the endpoint caches prompt prefixes itself; cached tokens are priced when reported",
    ("costs", "prices_file"): "prices come from the built-in table and costs.prices",
}
# architect's names for keys remediate has under another name.
ARCHITECT_RENAMES = {("llm", "api_base"): "base_url", ("llm", "timeout"): "timeout_seconds",
                     ("llm", "retries"): "max_retries"}


def _architect_only(data: dict[str, Any], lines: Mapping[tuple[Any, ...], int], label: str | None
                    ) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """architect's keys that remediate loads without acting on them, taken out of `data` with the reason each
    is ignored; architect's names for our keys renamed."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    ignored: list[tuple[str, str]] = []

    def note(path: tuple[Any, ...], why: str) -> None:
        where = f" ({label} line {lines[path]})" if label and path in lines else ""
        ignored.append((".".join(map(str, path)) + where, why))

    for section, why in ARCHITECT_SECTIONS.items():
        if section in data:
            data.pop(section)
            note((section,), why)
    for (section, key), why in ARCHITECT_KEYS.items():
        if isinstance(data.get(section), dict) and key in data[section]:
            data[section].pop(key)
            note((section, key), why)
    for (section, key), ours in ARCHITECT_RENAMES.items():
        block = data.get(section)
        if isinstance(block, dict) and key in block:
            value = block.pop(key)
            block.setdefault(ours, float(value) if ours == "timeout_seconds" and isinstance(value, int) else value)
    for section, why in (("guardrails", "remediate's guardrails are always on"),
                         ("costs", "costs.budget_usd is always enforced")):
        if isinstance(data.get(section), dict) and data[section].get("enabled") is False:
            data[section].pop("enabled")
            note((section, "enabled"), f"false is ignored: {why}")
    if isinstance(data.get("costs"), dict):
        data["costs"].pop("enabled", None)
    hooks = data.get("hooks")
    if isinstance(hooks, dict) and hooks.get("context_compress"):
        note(("hooks", "context_compress"), "remediate never compresses the context, so these hooks never run")
    mcp = data.get("mcp")
    if isinstance(mcp, dict) and isinstance(mcp.get("servers"), list):
        mcp["servers"] = [_architect_server(server, i, lines, label) for i, server in enumerate(mcp["servers"])]
    return data, tuple(ignored)


def _architect_server(server: Any, index: int, lines: Mapping[tuple[Any, ...], int], label: str | None) -> Any:
    """architect's `token_env` on a server is bearer auth; its literal `token` is refused, not loaded."""
    if not isinstance(server, dict):
        return server
    if "token" in server:
        raise UserError("a token written into the repository's config is a leaked credential",
                        field=f"mcp.servers[{index}].token", source=label,
                        line=lines.get(("mcp", "servers", index, "token")),
                        hint="store it as a secret, pass it to the step as a variable, and name that with token_env")
    if "token_env" in server and "auth" not in server:
        server = dict(server)
        server["auth"] = {"type": "bearer", "token_env": server.pop("token_env")}
    return server


def config_names(explicit: str | None) -> tuple[str, ...]:
    """Where a config is looked for, in order: the `config` input's file, else the usual names."""
    return (explicit,) if explicit else CONFIG_FILES


def find_config_file(repo: Path, explicit: str | None) -> Path | None:
    for name in config_names(explicit):
        path = repo / name if not Path(name).is_absolute() else Path(name)
        if path.is_file():
            return path
    if explicit:
        raise UserError("file not found", field="config", source=explicit,
                        hint="set the config input to a path relative to the repository root")
    return None


def load_config(repo: Path, explicit: str | None = None, overrides: Mapping[str, str] | None = None) -> Config:
    path = find_config_file(repo, explicit)
    if path is None:
        return parse_config(None, None, overrides)
    label = path.name if path.parent == repo else str(path)
    config = parse_config(path.read_text(encoding="utf-8", errors="replace"), label, overrides)
    inside = None
    try:
        inside = path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        inside = None
    return config.model_copy(update={"source_path": inside})


def parse_config(text: str | None, label: str | None, overrides: Mapping[str, str] | None = None) -> Config:
    """A config from its text (None: no file, the defaults); `label` names it in errors."""
    data: dict[str, Any] = {}
    lines: dict[tuple[Any, ...], int] = {}
    if text is not None:
        data, lines = _parse_yaml(text, label or "config")
    data, ignored = _architect_only(data, lines, label)
    data, overridden = _apply_overrides(data, overrides or {})
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _user_error(exc, lines, label, overridden) from None
    known = {server.name for server in config.mcp.servers}
    for i, signal in enumerate(config.validation.signals):
        if signal.server not in known:
            raise UserError(f"{signal.server!r} is not the name of a server in mcp.servers",
                            field=f"validation.signals[{i}].server", source=label,
                            line=lines.get(("validation", "signals", i, "server")))
    return config.model_copy(update={"source": label, "ignored": ignored})


def _parse_yaml(text: str, label: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"invalid YAML: {problem}", source=label,
                        line=mark.line + 1 if mark else None) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise UserError(f"expected a mapping at the top level, got {type(data).__name__}", source=label, line=1)
    lines: dict[tuple[Any, ...], int] = {}
    _index_lines(node, (), lines, label)
    return data, lines


def _index_lines(node: yaml.Node | None, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int],
                 label: str) -> None:
    if node is None:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            dotted = ".".join(str(p) for p in (*path, key))
            if key in seen:
                # YAML loaders keep the last one silently; a guardrail block written twice must not vanish.
                raise UserError("duplicate key", field=dotted, source=label, line=key_node.start_mark.line + 1,
                                hint=f"it is already set on line {lines[(*path, key)]}")
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines, label)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), lines, label)


def _user_error(exc: ValidationError, lines: dict[tuple[Any, ...], int], label: str | None,
                overridden: Mapping[tuple[str, ...], str]) -> UserError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
    if loc[:2] in overridden:
        # The value came from an action input or CLI flag, not from the file: name the input.
        label, lines, dotted = None, {}, overridden[loc[:2]]  # type: ignore[index]
    line = None
    for depth in range(len(loc), -1, -1):
        if loc[:depth] in lines:
            line = lines[loc[:depth]]
            break
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
        hint = "see the configuration reference in docs/configuration.md"
    elif kind == "missing":
        message, hint = "is required", None
    else:
        got = err.get("input")
        got_text = f", got {got!r}" if isinstance(got, (str, int, float, bool)) else ""
        message, hint = f"{err['msg'].removeprefix('Value error, ')}{got_text}", None
    return UserError(message, field=dotted, source=label, line=line, hint=hint)


def _apply_overrides(data: dict[str, Any], overrides: Mapping[str, str]
                     ) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Action inputs and CLI flags win over the file; values arrive as strings. Also returns which config
    keys an input set, so a validation error names the input rather than the file."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    overridden: dict[tuple[str, ...], str] = {}
    inputs = {("llm", "model"): "model", ("costs", "budget_usd"): "budget-usd",
              ("delivery", "base_branch"): "base-branch", ("llm", "base_url"): "llm-base-url"}

    def put(section: str, key: str, value: Any) -> None:
        current = data.get(section)
        data[section] = dict(current) if isinstance(current, dict) else {}
        data[section][key] = value
        overridden[(section, key)] = inputs[(section, key)]

    if overrides.get("model"):
        put("llm", "model", overrides["model"])
    if overrides.get("budget-usd"):
        try:
            put("costs", "budget_usd", float(overrides["budget-usd"]))
        except ValueError:
            raise UserError(f"expected a number of US dollars, got {overrides['budget-usd']!r}",
                            field="budget-usd") from None
    if overrides.get("base-branch"):
        put("delivery", "base_branch", overrides["base-branch"])
    if overrides.get("llm-base-url"):
        put("llm", "base_url", overrides["llm-base-url"])
    return data, overridden
