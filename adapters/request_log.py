"""What each request did, for the log: one line per finished request, and JSON log lines.

`RequestLog` observes the engine's steps (`Engine.on_step`) and the effects the runner performs
(it is a `TraceSink`, like `adapters.timeline.Timeline`) and, when the request is over, gives the
fields of its log line: the request id, the model asked and served, the accounts and endpoints
tried (opaque account ids, from the `SendAttempt` effects), the compact state path, the seconds
waited, the outcome and its cause (error type, failure kind), the duration. At debug level each
transition is logged too. No secret, prompt text or email is among them.

`JsonFormatter` renders every log record as one JSON object per line (`--log-format json`), with
a request line's fields as top-level keys.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from engine.effects import Effect, Finish, Outcome, SendAttempt
from engine.events import Event
from engine.request import Request

log = logging.getLogger("interlock.requests")
MAX_OPEN = 10_000  # requests remembered at once (one that never finishes is forgotten)
FIELDS = "fields"  # the `extra` key JSON lines take their fields from


@dataclass
class _Seen:
    at: float
    model: str
    client_model: str | None
    stream: bool
    states: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    served: str = ""
    waited: float = 0.0
    finished: float | None = None


class RequestLog:
    def __init__(self) -> None:
        self._open: dict[str, _Seen] = {}

    # the engine's step observer -----------------------------------------------------------
    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        seen = self._open.get(request.id)
        if seen is not None:
            if not seen.states:
                seen.states.append(source)
            if seen.states[-1] != dest:
                seen.states.append(dest)
            seen.waited = request.waited
        if log.isEnabledFor(logging.DEBUG) and trigger != "content_received":
            log.debug(
                "%s %s --%s--> %s",
                request.id,
                source,
                trigger,
                dest,
                extra={
                    FIELDS: {
                        "request_id": request.id,
                        "from": source,
                        "trigger": trigger,
                        "to": dest,
                    }
                },
            )

    # the runner's TraceSink ---------------------------------------------------------------
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        if len(self._open) >= MAX_OPEN:
            self._open.pop(next(iter(self._open)))
        self._open[request_id] = _Seen(at, model, client_model, stream, served=model)

    def received(self, request_id: str, at: float, event: Event) -> None:
        return None

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        seen = self._open.get(request_id)
        if seen is None:
            return
        for effect in effects:
            if isinstance(effect, SendAttempt):
                seen.attempts.append(f"{effect.account}@{effect.endpoint}")
                seen.served = effect.model
            elif isinstance(effect, Finish):
                seen.finished = at

    # the request's log line -----------------------------------------------------------------
    def finish(self, request_id: str, outcome: Outcome) -> dict[str, Any]:
        """The fields of the request's log line (and forget the request)."""
        seen = self._open.pop(request_id, None)
        fields: dict[str, Any] = {"request_id": request_id}
        if seen is not None:
            fields.update(
                model=seen.client_model or seen.model,
                served_model=outcome.model or seen.served,
                stream=seen.stream,
                attempts=seen.attempts,
                path=">".join(seen.states),
                waited_s=round(seen.waited, 3),
                duration_s=round((seen.finished or seen.at) - seen.at, 3),
            )
        fields.update(
            status=outcome.status,
            outcome="ok" if outcome.ok else "error",
            error_type=outcome.error_type,
            failure=outcome.failure.value if outcome.failure is not None else None,
        )
        return fields


def describe(fields: dict[str, Any]) -> str:
    """The text form of a request line's details (after its summary)."""
    parts = [
        f"attempts={','.join(fields.get('attempts') or []) or '-'}",
        f"path={fields.get('path') or '-'}",
        f"waited={fields.get('waited_s', 0.0):.3f}s",
        f"took={fields.get('duration_s', 0.0):.3f}s",
    ]
    if fields.get("outcome") != "ok":
        cause = fields.get("error_type") or "-"
        if fields.get("failure"):
            cause += f"/{fields['failure']}"
        parts.append(f"cause={cause}")
    return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: time, level, logger, message, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)
