"""Makes the `peers` package (test and demo peers) importable from the repository root, and sets what the
sandbox needs when the suite runs as root:

- this interpreter's scripts first on PATH: the action runs `python -m pytest` from PATH as another user, so
  the suite's own interpreter (which that user can start; scripts/setup sees to it) must be the one found;
- a sandbox user of its own for each pytest-xdist worker: a command's end sweeps every process of its user,
  and two workers sharing one would end each other's test runs.
"""

import os
import sys

# The venv's scripts by their real path: a venv reached through a link under /root is none of the sandbox user's.
os.environ["PATH"] = os.path.join(os.path.realpath(sys.prefix), "bin") + os.pathsep + os.environ.get("PATH", "")
# Distinct per session too (by the pid of the xdist controller, or of pytest itself), so two suites running
# at once do not share one either.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
_session = os.getppid() if _worker else os.getpid()
_index = int(_worker) % 8 if _worker.isdigit() else 0
os.environ["REMEDIATE_SANDBOX_UID"] = str(60_000 + (_session % 1_000) * 8 + _index)
