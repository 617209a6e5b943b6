"""remediate: turn a diagnosed production incident into a tested hotfix PR."""

__version__ = "0.1.0"
