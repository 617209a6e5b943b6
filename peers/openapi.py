"""Request shapes from GitHub's official OpenAPI description (npm `@octokit/openapi`).

The dereferenced description is 70 MB; the operations a stand-in serves are extracted once into a
small cached file and used to validate each request: the operation must exist, its query
parameters must be declared, and its JSON body must match the request-body schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "tests" / "npm" / "node_modules" / "@octokit" / "openapi" / "generated" / \
    "api.github.com.deref.json"
CACHE = ROOT / ".cache" / "github-openapi-subset.json"
_WANTED = re.compile(
    r"^/repos/\{owner\}/\{repo\}(/(pulls|issues|labels|collaborators|commits|statuses|deployments)(/.*)?)?$")
# The cached subset is valid for one spec file, one selection of paths and one shape of extraction.
_EXTRACTION = f"v1:{hashlib.sha256(_WANTED.pattern.encode()).hexdigest()[:16]}"


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` means the JSON Schema type also admits null."""
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k not in ("example", "examples")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    return out


def spec_path() -> Path:
    return Path(os.environ.get("GITHUB_OPENAPI_SPEC", DEFAULT_SPEC))


def load_subset() -> dict[str, Any]:
    spec = spec_path()
    if not spec.is_file():
        raise FileNotFoundError(f"{spec} is missing: run `npm ci --prefix tests/npm` (scripts/test does)")
    stamp = f"{spec}:{spec.stat().st_size}:{spec.stat().st_mtime_ns}:{_EXTRACTION}"
    try:
        cached = json.loads(CACHE.read_text())
    except (OSError, ValueError):
        cached = {}
    if cached.get("stamp") == stamp:
        return cached
    full = json.loads(spec.read_text(encoding="utf-8"))
    operations: dict[str, Any] = {}
    for template, item in full["paths"].items():
        if not _WANTED.match(template):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            operations[f"{method.upper()} {template}"] = {
                "operation_id": op.get("operationId"),
                "query": sorted(p["name"] for p in params if p.get("in") == "query"),
                "body": _nullable(body) if body else None,
                "body_required": bool((op.get("requestBody") or {}).get("required")),
            }
    subset = {"stamp": stamp, "version": full.get("info", {}).get("version"), "operations": operations}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    partial = CACHE.with_name(f"{CACHE.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(subset))
    os.replace(partial, CACHE)  # a concurrent test session reads the old subset or the new one, never half of one
    return subset


@dataclass
class OpenAPIChecker:
    operations: dict[str, Any]

    @classmethod
    def load(cls) -> OpenAPIChecker:
        return cls(load_subset()["operations"])

    def __post_init__(self) -> None:
        # The most literal template wins: `/pulls/comments` is its own operation, not pull number "comments".
        templates = [(key, key.split(" ", 1)) for key in self.operations]
        templates.sort(key=lambda t: (t[1][1].count("{"), -len(t[1][1])))
        self._patterns = [(key, method, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"))
                          for key, (method, template) in templates]

    def find(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for key, op_method, pattern in self._patterns:
            if op_method == method and pattern.match(path):
                return key, self.operations[key]
        return None

    def check(self, method: str, path: str, query: dict[str, Any], body: Any) -> list[str]:
        """Every way the request departs from GitHub's description; empty when it conforms."""
        found = self.find(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in GitHub's REST API"]
        key, op = found
        problems = [f"{key}: undeclared query parameter {name!r}" for name in query if name not in op["query"]]
        if op["body"] is not None and (body is not None or op["body_required"]):
            validator = jsonschema.Draft7Validator(op["body"])
            problems += [f"{key} ({op['operation_id']}): body {'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                         for e in validator.iter_errors(body)]
        return problems
