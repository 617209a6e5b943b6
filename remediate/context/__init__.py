"""The first prompt: MCP prefetch, condensed logs, suspect code and the culprit commit."""
