"""aiohttp's own log lines about requests it could not parse, in one line each.

aiohttp answers a malformed request (bare LF line endings, a header over 8 KB, Content-Length
with Transfer-Encoding, no Host, TLS or other bytes that are not HTTP) with a plain 400 itself,
before any handler runs, and logs it with a full traceback through the server's logger. The
proxy gives aiohttp `HTTP_LOG` instead (`web.Application(handler_args=...)`), whose filter turns
each such record into one line: who, and what aiohttp said was wrong (cut to 200 characters).
Any other exception logged there keeps its traceback: that would be a bug.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

from adapters.convert.anthropic import bounded

HTTP_LOG = logging.getLogger("interlock.http")
DETAIL_CHARS = 200


class OneLine(logging.Filter):
    """Malformed requests and lost connections: one line, at most WARNING, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError | ConnectionError):
            said = error.message if isinstance(error, HttpProcessingError) else str(error)
            detail = bounded(" ".join(str(said).split()), DETAIL_CHARS)
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {detail}"
            record.args = None
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_ONE_LINE = OneLine()


def http_log() -> logging.Logger:
    """The logger to give aiohttp's request handler (its filter is added once)."""
    HTTP_LOG.addFilter(_ONE_LINE)  # a no-op when already there
    return HTTP_LOG
