"""The guardrails: what may be written or run, and the change as it was vetted."""
