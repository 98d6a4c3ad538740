"""The transition table is complete, consistent and is what the machine and diagrams use."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import diagram
from engine.actions import ACTIONS
from engine.events import (
    ALL_EVENTS,
    ContentReceived,
    Event,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import FailureKind
from engine.guards import GUARDS
from engine.machine import UnexpectedEvent
from engine.spec import FAILURE_TRIGGERS
from engine.table import AFTER_COMMIT, NON_TERMINAL, STATES, TRANSITIONS, TRIGGERS
from tests.support import World, sample_event

ROOT = Path(__file__).resolve().parent.parent


def test_every_guard_and_action_named_in_the_table_exists() -> None:
    for row in TRANSITIONS:
        for guard in row.guards:
            assert guard in GUARDS, f"{row}: unknown guard {guard}"
        if row.action:
            assert row.action in ACTIONS, f"{row}: unknown action {row.action}"
    for state in STATES:
        for action in (*state.on_enter, *state.on_exit):
            assert action in ACTIONS, f"{state.name}: unknown action {action}"


def test_every_guard_and_action_is_used_by_the_table() -> None:
    used_guards = {g for row in TRANSITIONS for g in row.guards}
    used_actions = {row.action for row in TRANSITIONS if row.action} | {
        a for s in STATES for a in (*s.on_enter, *s.on_exit)
    }
    assert set(GUARDS) - used_guards == set()
    assert set(ACTIONS) - used_actions == set()


def test_every_decision_list_ends_with_an_unguarded_row() -> None:
    lists: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    for row in TRANSITIONS:
        lists.setdefault((row.source, row.trigger), []).append(row.guards)
    for (source, trigger), guards in lists.items():
        assert guards[-1] == (), f"{source} on {trigger} has no fall-through row"
        assert () not in guards[:-1], f"{source} on {trigger}: a row after the fall-through"


ATTEMPT_ENDS = (UpstreamFailed, UpstreamUnreachable, StreamBroken, StreamEnded)


def test_every_trigger_of_the_table_is_fired_by_some_event_and_every_event_fires_one() -> None:
    plain = {cls.trigger for cls in ALL_EVENTS if cls not in ATTEMPT_ENDS}
    classified = set(FAILURE_TRIGGERS.values()) | {AFTER_COMMIT, "stream_ended"}
    assert plain | classified == set(TRIGGERS)


def test_every_failure_kind_fires_a_failure_class_the_table_handles_while_fetching() -> None:
    fetching = {r.trigger for r in TRANSITIONS if r.source == "Fetching"}
    streaming = {r.trigger for r in TRANSITIONS if r.source == "Streaming"}
    for kind, trigger in FAILURE_TRIGGERS.items():
        assert trigger in streaming, kind
        if kind is not FailureKind.EMPTY_RESPONSE:
            assert trigger in fetching, kind


def test_every_non_terminal_state_handles_disconnects_and_deadlines() -> None:
    for state in NON_TERMINAL:
        triggers = {r.trigger for r in TRANSITIONS if r.source == state}
        assert {"client_disconnected", "deadline_expired"} <= triggers


def test_terminal_states_have_no_way_out() -> None:
    terminal = {s.name for s in STATES if s.terminal}
    assert not [r for r in TRANSITIONS if r.source in terminal]


STATE_NAMES = [s.name for s in STATES]
PAIRS = [(state, cls) for state in STATE_NAMES for cls in ALL_EVENTS]


@pytest.mark.parametrize(("state", "event_cls"), PAIRS, ids=[f"{s}-{c.__name__}" for s, c in PAIRS])
@settings(max_examples=6)
@given(data=st.data())
def test_every_state_event_pair_is_a_declared_transition_or_a_typed_error(
    state: str, event_cls: type[Event], data: st.DataObject
) -> None:
    world = World(accounts=["A", "B"])
    request = world.request_in_state(state)
    event = sample_event(event_cls, data)
    trigger, _ = world.engine.trigger_of(request, event)
    declared = any(r.source == state and r.trigger == trigger for r in TRANSITIONS)
    before = (request.state, request.attempts, request.sends, request.outcome)
    if not declared:
        with pytest.raises(UnexpectedEvent):
            world.engine.handle(request, event, world.now)
        assert (request.state, request.attempts, request.sends, request.outcome) == before
        return
    effects = world.engine.handle(request, event, world.now)
    assert request.state in STATE_NAMES
    assert isinstance(effects, list)
    # a declared pair never falls into the internal-error path
    assert request.outcome is None or "internal error" not in request.outcome.message


def test_an_event_after_the_outcome_is_rejected_and_changes_nothing() -> None:
    world = World(accounts=["A"])
    request = world.request_in_state("Streaming")
    world.handle(request, ContentReceived(content="x"))
    world.finish_stream(request)
    assert request.state == "Done"
    with pytest.raises(UnexpectedEvent):
        world.engine.handle(request, StreamOpened(), world.now)
    assert request.state == "Done"


def test_diagrams_on_disk_match_the_table() -> None:
    for name, text in diagram.files().items():
        path = ROOT / "diagrams" / name
        assert path.exists(), f"diagrams/{name} is missing: run `make diagrams`"
        assert path.read_text(encoding="utf-8") == text, f"diagrams/{name} is stale: make diagrams"


def test_the_readme_embeds_the_current_chart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert diagram.README_START in readme
    assert diagram.embed_in_readme(readme) == readme, "README chart is stale: make diagrams"


def test_the_chart_shows_every_state_and_every_declared_edge_with_its_trigger() -> None:
    chart = diagram.mermaid()
    for state in STATE_NAMES:
        assert state in chart
    edges = {
        line.split(": ")[0].strip(): line.split(": ")[1]
        for line in chart.splitlines()
        if "-->" in line and ": " in line
    }
    for row in TRANSITIONS:
        if row.trigger in ("client_disconnected", "deadline_expired"):
            continue
        label = edges[f"{row.source} --> {row.dest or row.source}"]
        assert row.trigger in label.replace("*", "").split(", ")
