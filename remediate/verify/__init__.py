"""Tests: which run, how they run, and what their verdict proves."""
