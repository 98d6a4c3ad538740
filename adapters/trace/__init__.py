"""Traces: record what happened, replay it offline, compare."""
