"""MCP servers through the official SDK."""
