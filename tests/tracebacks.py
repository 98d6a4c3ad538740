"""No test may make the proxy log a traceback: a handler on the root logger collects every record
from the code under test that would print one (`exc_info`, `exc_text` or `stack_info`), during
every test, and the test fails at teardown showing it. A test that provokes one on purpose says
so with `@pytest.mark.traceback_expected`.

"From the code under test" means a record of interlock's loggers (`interlock.*`), of aiohttp's
server side (`aiohttp.server`, `aiohttp.web`, `aiohttp.access`), or any other record (asyncio's
"Task exception was never retrieved") whose traceback passes through `adapters/` or `engine/`.
A test's own HTTP client that is garbage-collected after its event loop closed logs through
asyncio too, and that is not the proxy's doing.

The log is held at INFO at least during the test, as `interlock serve` runs it, so that a
traceback logged at INFO counts too. Records are only looked at, and formatted only when caught.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = tuple(str(ROOT / package) + "/" for package in ("adapters", "engine"))
SERVER_LOGGERS = ("interlock", "aiohttp.server", "aiohttp.web", "aiohttp.access")


def from_the_code(record: logging.LogRecord) -> bool:
    if any(record.name == name or record.name.startswith(name + ".") for name in SERVER_LOGGERS):
        return True
    error = record.exc_info[1] if record.exc_info else None
    while error is not None:
        if any(
            frame.filename.startswith(CODE) for frame in traceback.extract_tb(error.__traceback__)
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


class TracebackCatcher(logging.Handler):
    """Collects the records from the code under test that would print a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.caught: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if (record.exc_info or record.exc_text or record.stack_info) and from_the_code(record):
            self.caught.append(record)

    def report(self) -> str:
        return "\n\n".join(self.format(record) for record in self.caught)


@contextmanager
def catching_tracebacks() -> Iterator[TracebackCatcher]:
    """The catcher on the root logger, with the root at INFO or below, while inside."""
    catcher = TracebackCatcher()
    root = logging.getLogger()
    level = root.level
    root.addHandler(catcher)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield catcher
    finally:
        root.removeHandler(catcher)
        root.setLevel(level)
