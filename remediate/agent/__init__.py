"""The agent loop, its model, its budget and its tools."""
