"""A human-readable timeline of each request: its path through the states, with times and attempts.

`Timeline` observes the engine's steps (`Engine.on_step`) and the effects the runner performs
(it is a `TraceSink`), and renders per request lines such as

    +0.000s  Selecting --target_granted--> Fetching   attempt 1: account-1 @ daily
    +0.012s  Fetching --rate_limited--> Switching      account-1 rests 60s (quota exhausted)

Times are relative to the request's arrival. Account ids are opaque; no secret is involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.effects import (
    CoolDownAccount,
    Effect,
    Finish,
    InvalidateAccount,
    RestTarget,
    SendAttempt,
    StartTimer,
)
from engine.events import Event
from engine.request import Request


@dataclass
class _Line:
    at: float
    text: str
    notes: list[str] = field(default_factory=list)


class Timeline:
    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names if names is not None else {}  # account id -> a label to show
        self.started: dict[str, float] = {}
        self.lines: dict[str, list[_Line]] = {}
        self.labels: dict[str, str] = {}

    # the engine's step observer -----------------------------------------------------------
    def on_step(self, request: Request, source: str, trigger: str, dest: str) -> None:
        arrow = f"{source} --{trigger}--> {dest}" if source != dest else f"{source} ({trigger})"
        if trigger == "content_received":
            lines = self.lines.setdefault(request.id, [])
            if lines and lines[-1].text.endswith("(content_received)"):
                return  # one line for a run of relayed content
        self.lines.setdefault(request.id, []).append(_Line(request.now, arrow))

    # the runner's TraceSink ---------------------------------------------------------------
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        self.started[request_id] = at
        asked = f"{client_model} -> " if client_model and client_model != model else ""
        self.labels[request_id] = f"{asked}{model}, {'streaming' if stream else 'not streaming'}"

    def received(self, request_id: str, at: float, event: Event) -> None:
        return None

    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None:
        lines = self.lines.setdefault(request_id, [])
        if not lines:
            lines.append(_Line(at, "Selecting (start)"))
        start = self.started.get(request_id, at)
        for effect in effects:
            note = _describe(effect, start, self.names)
            if note:
                lines[-1].notes.append(note)

    def render(self, request_id: str) -> str:
        start = self.started.get(request_id, 0.0)
        out = [f"{request_id} ({self.labels.get(request_id, '')})"]
        for line in self.lines.get(request_id, []):
            notes = f"   {'; '.join(line.notes)}" if line.notes else ""
            out.append(f"  +{line.at - start:7.3f}s  {line.text:<48}{notes}")
        return "\n".join(out)


def _describe(effect: Effect, start: float, names: dict[str, str]) -> str:
    if isinstance(effect, SendAttempt):
        refresh = " (fresh token)" if effect.refresh_credentials else ""
        account = names.get(effect.account, effect.account)
        return f"attempt {effect.attempt}: {account} @ {effect.endpoint}{refresh}"
    if isinstance(effect, StartTimer):
        return f"wait until +{effect.at - start:.3f}s ({effect.purpose})"
    if isinstance(effect, CoolDownAccount):
        account = names.get(effect.account, effect.account)
        return f"{account} rests until +{effect.until - start:.1f}s ({effect.reason})"
    if isinstance(effect, RestTarget):
        account = names.get(effect.account, effect.account)
        return (
            f"{account} @ {effect.endpoint} rests until +{effect.until - start:.1f}s "
            f"({effect.reason})"
        )
    if isinstance(effect, InvalidateAccount):
        return f"{names.get(effect.account, effect.account)} invalid: {effect.reason}"
    if isinstance(effect, Finish):
        o = effect.outcome
        return "outcome: ok" if o.ok else f"outcome: {o.status} {o.error_type}"
    return ""
