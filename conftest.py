"""Makes the `peers` package (test and demo peers) importable from the repository root."""
