"""The request log line: what happened to each request, as text and as JSON, without secrets."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from adapters.config import ConfigError, load_settings
from adapters.fake_upstream import preset
from adapters.request_log import FIELDS, JsonFormatter
from tests.e2e import BODY, post, proxy, run

PROMPT = "my very private prompt text"


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    lines = [
        json.loads(formatter.format(r)) for r in caplog.records if r.name == "interlock.server"
    ]
    return [line for line in lines if "attempts" in line]


def test_the_request_line_says_what_happened_as_json_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = []
    body = {**BODY, "messages": [{"role": "user", "content": PROMPT}]}

    async def scenario() -> list[str]:
        async with proxy(server={"api_key": "sk-proxy-SECRET"}) as served:
            assert served.fake is not None
            for account in served.fake.accounts:
                secrets.append(account.refresh_token)
                secrets.append(served.fake.access_token(account.name))
            served.fake.script("account-1", [preset("server_500")])
            key = {"x-api-key": "sk-proxy-SECRET"}
            ok = await post(served, body, headers=key, stream=True)
            served.fake.script("account-1", [preset("server_500")] * 5)
            served.fake.script("account-2", [preset("server_500")] * 5)
            failed = await post(served, body, headers=key)
            assert ok[0] == 200 and failed[0] >= 500
            return [ok[1]["request-id"], failed[1]["request-id"]]

    ids = run(scenario())
    ok, failed = _request_lines(caplog)
    assert ok["request_id"] == ids[0] and failed["request_id"] == ids[1]
    assert ok["level"] == "info" and ok["logger"] == "interlock.server"
    assert ok["model"] == BODY["model"] and ok["served_model"]
    assert ok["stream"] is True and ok["via"]
    assert len(ok["attempts"]) == 2 and all("@" in a for a in ok["attempts"])
    assert ok["attempts"][0] != ok["attempts"][1]  # the 500 moved the request on
    assert ok["path"].startswith("Selecting>") and ">" in ok["path"]
    assert ok["waited_s"] >= 0 and ok["duration_s"] >= 0
    assert (ok["status"], ok["outcome"], ok["error_type"], ok["failure"]) == (200, "ok", None, None)
    assert ok["request_id"] in ok["message"] and "attempts=" in ok["message"]
    assert failed["outcome"] == "error" and failed["status"] >= 500
    assert failed["error_type"] and failed["failure"] == "server_error"
    assert "cause=" in failed["message"]
    # debug level: each transition, as JSON too
    steps = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "interlock.requests" and getattr(r, FIELDS, None)
    ]
    assert any(s["request_id"] == ids[0] and s["trigger"] for s in steps)
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in [*secrets, "sk-proxy-SECRET", "@sandbox.invalid", PROMPT]:
        assert secret not in text
        assert secret not in caplog.text
    assert secrets


def test_every_log_line_is_one_json_object() -> None:
    logger = logging.getLogger("interlock.test")
    record = logger.makeRecord("interlock.test", logging.WARNING, "f", 1, "a %s", ("b",), None)
    assert json.loads(JsonFormatter().format(record))["message"] == "a b"
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logger.makeRecord("x", logging.ERROR, "f", 1, "oops", (), sys.exc_info())
    line = JsonFormatter().format(failing)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "error" and "ValueError: boom" in parsed["exception"]


def test_the_log_format_is_a_server_setting() -> None:
    settings = load_settings(env={}, overrides={"server": {"log_format": "json"}})
    assert settings.server.log_format == "json"
    assert load_settings(env={}).server.log_format == "text"
    with pytest.raises(ConfigError):
        load_settings(env={}, overrides={"server": {"log_format": "xml"}})
