"""Hypothesis profiles: `ci` (the default, used by `make test`) generates the 10,000+ cases per
run the engine's invariants are checked on; `dev` is a quick pass (HYPOTHESIS_PROFILE=dev).
Every test also fails when the code logs a traceback during it (`tests/tracebacks.py`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.redis_server import RedisServer
from tests.tracebacks import catching_tracebacks

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_tracebacks_in_the_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test: nothing the code logs carries a traceback (`tests/tracebacks.py`)."""
    with catching_tracebacks() as catcher:
        yield
    if catcher.caught and request.node.get_closest_marker("traceback_expected") is None:
        pytest.fail(f"the log holds {len(catcher.caught)} traceback(s):\n{catcher.report()}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server: `apt-get install redis-server` (.ci/run installs it)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
