"""The team's own checks, run in the sandbox: architect's hooks (`hooks.py`) and quality gates (`gates.py`)."""
