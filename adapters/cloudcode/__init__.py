"""The Cloud Code upstream: wire format, credentials, transport."""
