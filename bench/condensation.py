"""Log condensation on a large generated incident log: throughput, size reduction, and whether every
distinct error signature survives.

    .venv/bin/python bench/condensation.py [--mb 30] [--budget-tokens 6000] [--seed 7]

The log mixes what a real incident window holds: request lines from many services with varying ids and
latencies, periodic GC and health-check lines, warnings, a few kinds of errors repeated with different values,
and Python, JVM and Node.js stack traces (some repeated, some distinct), in random order. Each distinct error
signature is a string that must appear in the condensed text.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remediate.context.logs import condense
from remediate.context.pack import CHARS_PER_TOKEN
from remediate.secrets import Redactor

SERVICES = ["user-service", "billing", "gateway", "search", "notifier", "auth"]
TRACKED = ["app/users/service.py", "app/users/worker.py", "src/main/java/com/acme/billing/Invoice.java",
           "web/src/handlers/search.js"]


def _ts(second: int) -> str:
    return f"2026-11-25T{3 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{second * 7 % 1000:03d}Z"


def _errors(rng: random.Random) -> list[tuple[str, str]]:
    """(line or block, signature that must survive)."""
    kinds = [
        (lambda: f"ERROR billing charge failed for invoice {rng.randint(1, 10**6)}: card_declined",
         "charge failed for invoice"),
        (lambda: f"ERROR gateway upstream timeout after {rng.randint(1000, 9000)}ms calling search",
         "upstream timeout after"),
        (lambda: "FATAL auth signing key rotation failed: kms unavailable", "signing key rotation failed"),
        (lambda: f'{{"level": "error", "service": "search", "msg": "index shard {rng.randint(0, 31)} unassigned"}}',
         "unassigned"),
        (lambda: "CRITICAL kubelet OOMKilled container user-service (limit 1024MiB)", "OOMKilled"),
    ]
    return [(make(), signature) for make, signature in kinds]


PY_TRACE = """ERROR user-service worker crashed
Traceback (most recent call last):
  File "/srv/app/users/worker.py", line 41, in run
    service.process_queue(queue)
  File "/usr/lib/python3.11/threading.py", line 1038, in _bootstrap_inner
    self.run()
  File "/srv/app/users/service.py", line {line}, in process_queue
    self._audit_log.append(message)
MemoryError: cannot allocate {size} bytes"""
JVM_TRACE = """ERROR billing request failed
java.lang.IllegalStateException: invoice {kind} closed
\tat com.acme.billing.Invoice.close(Invoice.java:88)
\tat com.acme.billing.Api.handle(Api.java:12)
\tat org.eclipse.jetty.server.Server.handle(Server.java:516)
Caused by: java.io.IOException: broken pipe
\t... 3 more"""
NODE_TRACE = """ERROR search handler threw
TypeError: Cannot read properties of undefined (reading '{field}')
    at parseQuery (/srv/web/src/handlers/search.js:42:13)
    at Layer.handle (/srv/web/node_modules/express/lib/router/layer.js:95:5)
    at next (/srv/web/node_modules/express/lib/router/route.js:149:13)"""


def generate(target_bytes: int, seed: int) -> tuple[str, set[str]]:
    rng = random.Random(seed)
    lines: list[str] = []
    signatures: set[str] = set()
    size = 0
    second = 0
    while size < target_bytes:
        second += rng.random() < 0.02
        roll = rng.random()
        if roll < 0.86:
            service = rng.choice(SERVICES)
            line = (f"{_ts(second)} INFO {service} {rng.choice(['GET', 'POST', 'PUT'])} /api/v1/"
                    f"{rng.choice(['users', 'orders', 'items'])}/{rng.randint(1, 10**6)} 200 "
                    f"{rng.randint(1, 900)}ms req={rng.getrandbits(64):016x}")
        elif roll < 0.95:
            line = f"{_ts(second)} DEBUG {rng.choice(SERVICES)} gc pause {rng.randint(1, 90)}ms heap " \
                   f"{rng.randint(100, 1000)}MiB"
        elif roll < 0.985:
            line = f"{_ts(second)} WARN {rng.choice(SERVICES)} slow query took {rng.randint(1, 9)}.{rng.randint(0, 9)}s"
        elif roll < 0.998:
            text, signature = rng.choice(_errors(rng))
            line = f"{_ts(second)} {text}"
            signatures.add(signature)
        else:
            kind = rng.randrange(3)
            if kind == 0:
                line = f"{_ts(second)} " + PY_TRACE.format(line=rng.choice([20, 20, 20, 57]), size=2**20)
                signatures.add("MemoryError: cannot allocate")
            elif kind == 1:
                which = rng.choice(["A", "B"])
                line = f"{_ts(second)} " + JVM_TRACE.format(kind=which)
                signatures.add(f"invoice {which} closed")
            else:
                field = rng.choice(["page", "sort"])
                line = f"{_ts(second)} " + NODE_TRACE.format(field=field)
                signatures.add(f"(reading '{field}')")
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n", signatures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=30)
    parser.add_argument("--budget-tokens", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    text, signatures = generate(int(args.mb * 1_000_000), args.seed)
    budget = CHARS_PER_TOKEN * args.budget_tokens
    redact = Redactor()
    redact.add("sk-bench-secret-value-0123456789", "glsa_benchmarktoken_abcdef")
    started = time.perf_counter()
    clean = redact(text)  # the pipeline redacts before it condenses
    redacted = time.perf_counter() - started
    started = time.perf_counter()
    out = condense(clean, budget, TRACKED)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    missing = sorted(s for s in signatures if s not in out.text)
    print(f"input: {len(text) / 1e6:.1f} MB, {out.lines} lines, {len(signatures)} distinct error signatures")
    print(f"redacted in {redacted:.2f} s; condensed in {elapsed:.2f} s: {len(text) / 1e6 / elapsed:.1f} MB/s, "
          f"{out.lines / elapsed:,.0f} lines/s; end to end {len(text) / 1e6 / (redacted + elapsed):.1f} MB/s; "
          f"process peak RSS {peak / 1e6:.0f} MB (generator included)")
    print(f"output: {out.chars_after} characters (budget {budget}, about {out.chars_after // CHARS_PER_TOKEN} "
          f"tokens), {len(text) / out.chars_after:,.0f}x smaller; {out.templates} templates, {out.errors} distinct "
          f"errors, {out.traces} distinct traces; repository files in traces: {', '.join(out.repo_files)}")
    print(f"error signatures kept: {len(signatures) - len(missing)}/{len(signatures)}"
          + (f"; MISSING: {missing}" if missing else ""))
    if missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
