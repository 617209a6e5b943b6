"""Delivery (branch, push, pull request) and escalation to humans."""
