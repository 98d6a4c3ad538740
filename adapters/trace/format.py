"""The trace format: JSON Lines, versioned, defined by these pydantic models.

Line 1 is a `Header` (format version, interlock version, the full policy, the RNG seed, the
clocks' origins, the pool's accounts as opaque ids with their state). Then, in time order:
inputs from outside the engine (`Arrival`, `Answer` = one event of an upstream attempt,
`Disconnect`) and outputs (`Step` = one transition, `Effects` = what the engine asked for).
Relayed content is recorded as a marker, never its text: traces hold no prompts, no answers,
no secrets. `json_schema()` is the JSON Schema generated from the models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
)

from engine import effects as effect_types
from engine import events as event_types
from engine.effects import Effect
from engine.events import ContentReceived, Event
from engine.store import AccountRecord

FORMAT = 2
"""2: engine v2 (provider-neutral upstream facts, targets, endpoint health)."""
INTERLOCK_VERSION = "0.1.0"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(_Record):
    kind: Literal["header"] = "header"
    format: int = FORMAT
    interlock: str = INTERLOCK_VERSION
    policy: dict[str, Any]
    seed: int
    start: float = Field(description="monotonic time of the recording's origin (s)")
    wall_start: float = Field(description="wall-clock time at `start` (epoch s)")
    accounts: list[AccountRecord]
    note: str = ""
    expect: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="expected outcome fields by request (corpus traces)"
    )


class Arrival(_Record):
    """A client request arrived; `model` is the upstream model it was resolved to,
    `client_model` the name the client sent (written only when known: older traces and the
    corpus have none)."""

    kind: Literal["arrival"] = "arrival"
    t: float
    request: str
    model: str
    stream: bool
    client_model: str | None = None

    @model_serializer(mode="wrap")
    def _without_unknown_client_model(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("client_model") is None:
            data.pop("client_model", None)
        return data


class Answer(_Record):
    """One event of upstream attempt `attempt` of `request` (as the transport produced it)."""

    kind: Literal["answer"] = "answer"
    t: float
    request: str
    attempt: int
    event: dict[str, Any]


class Disconnect(_Record):
    kind: Literal["disconnect"] = "disconnect"
    t: float
    request: str


class Step(_Record):
    kind: Literal["step"] = "step"
    t: float
    request: str
    source: str
    trigger: str
    dest: str


class Effects(_Record):
    kind: Literal["effects"] = "effects"
    t: float
    request: str
    state: str
    effects: list[dict[str, Any]]


Record = Annotated[
    Header | Arrival | Answer | Disconnect | Step | Effects, Field(discriminator="kind")
]
_RECORD = TypeAdapter(Record)
OUTPUT_KINDS = ("step", "effects")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one trace line."""
    return _RECORD.json_schema()


# events and effects <-> JSON ---------------------------------------------------------------------
_EVENTS: dict[str, type[Event]] = {c.__name__: c for c in event_types.ALL_EVENTS}
_EFFECTS: dict[str, type[Effect]] = {
    name: obj
    for name, obj in vars(effect_types).items()
    if isinstance(obj, type) and issubclass(obj, Effect) and obj is not Effect
}


def dump_event(event: Event) -> dict[str, Any]:
    if isinstance(event, ContentReceived):
        return {"type": "ContentReceived"}  # the content itself is never recorded
    data = event.model_dump(mode="json")
    if data.get("shared_duplicate") is False:
        del data["shared_duplicate"]  # only a shared window sets it: traces without one unchanged
    return {"type": type(event).__name__, **data}


def load_event(data: dict[str, Any]) -> Event:
    fields = dict(data)
    name = fields.pop("type", None)
    cls = _EVENTS.get(str(name))
    if cls is None:
        raise ValueError(f"unknown event type {name!r}")
    return cls.model_validate(fields)


def dump_effect(effect: Effect) -> dict[str, Any]:
    data = effect.model_dump(mode="json")
    if "content" in data:
        data["content"] = None  # relayed content is never recorded
    return {"type": type(effect).__name__, **data}


# reading ----------------------------------------------------------------------------------------
class TraceError(Exception):
    """A trace that cannot be read: the message names the file and the line."""


@dataclass
class Trace:
    path: str
    header: Header
    records: list[Record] = field(default_factory=list)

    def of(self, kind: str) -> list[Any]:
        return [r for r in self.records if r.kind == kind]

    def outputs(self) -> list[Step | Effects]:
        return [r for r in self.records if isinstance(r, Step | Effects)]


def parse_lines(lines: Iterable[str], path: str = "<trace>") -> Trace:
    header: Header | None = None
    records: list[Record] = []
    last = 0
    for number, line in enumerate(lines, start=1):
        last = number
        text = line.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            ends = "" if line.endswith("\n") else " (the file ends mid-record: truncated?)"
            raise TraceError(f"{path}:{number}: not JSON: {err.msg}{ends}") from None
        if header is None:
            header = _header(data, path, number)
            continue
        try:
            records.append(_RECORD.validate_python(data))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            raise TraceError(f"{path}:{number}: {where}: {first['msg']}") from None
    if header is None:
        raise TraceError(f"{path}:{last or 1}: empty trace: expected a header line")
    return Trace(path, header, records)


def _header(data: Any, path: str, number: int) -> Header:
    if not isinstance(data, dict) or data.get("kind") != "header":
        raise TraceError(f"{path}:{number}: the first line must be the trace header")
    version = data.get("format")
    if not isinstance(version, int) or version < 1:
        raise TraceError(f"{path}:{number}: unknown trace format version {version!r}")
    if version < FORMAT:
        raise TraceError(
            f"{path}:{number}: written by an older interlock ({data.get('interlock', '?')}, "
            f"format {version}, before engine v2); this interlock reads format {FORMAT}: "
            "record it again"
        )
    if version > FORMAT:
        raise TraceError(
            f"{path}:{number}: written by a newer interlock ({data.get('interlock', '?')}, "
            f"format {version}); this interlock reads format {FORMAT}"
        )
    try:
        return Header.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "header"
        raise TraceError(f"{path}:{number}: header {where}: {first['msg']}") from None


def read_trace(path: Path | str) -> Trace:
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_lines(handle, str(path))
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text file (invalid UTF-8)") from None
    except OSError as err:
        raise TraceError(f"{path}: cannot read ({err.strerror})") from None


def dumps(record: _Record) -> str:
    return record.model_dump_json() + "\n"
