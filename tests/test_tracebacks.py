"""The traceback check every test runs under (`tests/tracebacks.py`) catches what it should."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters import server
from tests.e2e import post, proxy, run
from tests.tracebacks import catching_tracebacks

# each test provokes tracebacks for an inner catcher; the outer one every test runs under sees
# them too
pytestmark = pytest.mark.traceback_expected


def test_a_traceback_the_proxy_logs_is_caught() -> None:
    with catching_tracebacks() as catcher:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("interlock.server").exception("internal error")
    assert len(catcher.caught) == 1 and "ValueError: boom" in catcher.report()


def test_a_traceback_logged_at_info_is_caught_as_the_served_log_would_show_it() -> None:
    with catching_tracebacks() as catcher:
        logging.getLogger("interlock.state").info("note", stack_info=True)
    assert len(catcher.caught) == 1


def test_a_failed_task_whose_traceback_runs_through_the_code_is_caught() -> None:
    def fail() -> None:
        raise RuntimeError("lost")

    error = None
    try:
        exec(compile("fail()", server.__file__, "exec"), {"fail": fail})  # a frame in adapters/
    except RuntimeError as err:
        error = err
    assert error is not None
    with catching_tracebacks() as catcher:
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=error)
    assert len(catcher.caught) == 1


def test_a_test_clients_own_noise_through_asyncio_is_not_the_proxys() -> None:
    try:
        raise RuntimeError("Event loop is closed")
    except RuntimeError as err:
        error = err
    with catching_tracebacks() as catcher:
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=error)
        logging.getLogger("interlock.server").warning("a plain warning")
    assert catcher.caught == []


def test_a_handler_that_fails_is_a_500_and_its_traceback_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server, "parse_messages_request", broken)

    async def scenario() -> None:
        async with proxy() as served:
            status, _, body = await post(served)
            assert status == 500 and body["error"]["type"] == "api_error"
            await asyncio.sleep(0)

    with catching_tracebacks() as catcher:
        run(scenario())
    assert any("RuntimeError: a bug" in catcher.format(r) for r in catcher.caught)
