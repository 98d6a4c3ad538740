"""Real clients (Claude Code, the TypeScript SDK) against interlock and a capture server.

`capture.py` records what Claude Code sends (the fixtures in tests/fixtures/claude_code/);
`clients.py` installs and runs the pinned clients; `test_clients.py` is `make e2e-clients`."""
