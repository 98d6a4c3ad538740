"""Anthropic Messages API <-> Cloud Code conversion (pure functions and translators)."""
