"""Shared pool state converges: any interleaving of the same effects, in any order and with
repeats, leaves two replicas equal; a cooldown only extends; a newer decision wins."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from adapters.shared.merge import Entry, Replica, account_key, wins

ACCOUNTS = [account_key(f"user{i}@example.com") for i in range(3)]
FIELDS = ["cooldown:claude-sonnet-4-6", "cooldown:gemini-3-flash", "enabled", "invalid"]


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    field = draw(st.sampled_from(FIELDS))
    if field.startswith("cooldown:"):
        value = {
            "until": draw(st.integers(0, 50)) * 1.0,
            "reason": draw(st.sampled_from(["a", "b"])),
        }
    elif field == "enabled":
        value = {"enabled": draw(st.booleans())}
    else:
        value = {"reason": draw(st.sampled_from([None, "revoked"])), "verify_url": None}
    return Entry(
        draw(st.sampled_from(ACCOUNTS)),
        field,
        value,
        draw(st.integers(0, 20)) * 1.0,
        draw(st.sampled_from(["i1", "i2", "i3"])),
    )


@given(st.lists(entries(), max_size=30), st.randoms(use_true_random=False), st.data())
def test_any_order_of_the_same_effects_gives_equal_replicas(
    effects: list[Entry], rng: object, data: st.DataObject
) -> None:
    first, second = Replica(), Replica()
    for entry in effects:
        first.apply(entry)
    shuffled = list(effects)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    repeats = data.draw(st.lists(st.sampled_from(effects), max_size=10)) if effects else []
    for entry in shuffled + repeats:
        second.apply(entry)
    assert first.entries == second.entries
    event(f"{len({e.slot for e in effects})} slots" if effects else "no effects")
    event("a repeat" if repeats else "no repeat")


def test_a_cooldown_only_extends_whatever_the_order() -> None:
    key = ACCOUNTS[0]
    short = Entry(key, "cooldown:m", {"until": 10.0, "reason": "rate"}, 5.0, "i2")
    long = Entry(key, "cooldown:m", {"until": 60.0, "reason": "quota"}, 1.0, "i1")
    replica = Replica()
    assert replica.apply(long)
    assert not replica.apply(short)  # newer but shorter: the rest stays
    assert replica.entries[long.slot] == long


def test_the_newer_decision_wins_and_a_tie_is_broken_the_same_way_everywhere() -> None:
    key = ACCOUNTS[1]
    old = Entry(key, "enabled", {"enabled": False}, 1.0, "i1")
    new = Entry(key, "enabled", {"enabled": True}, 2.0, "i2")
    assert wins(new, old) and not wins(old, new)
    tie_a = Entry(key, "enabled", {"enabled": False}, 3.0, "i1")
    tie_b = Entry(key, "enabled", {"enabled": True}, 3.0, "i2")
    assert wins(tie_b, tie_a) and not wins(tie_a, tie_b)


def test_an_entry_survives_its_wire_form_and_the_account_key_holds_no_email() -> None:
    entry = Entry(ACCOUNTS[2], "cooldown:m", {"until": 1.5, "reason": "quota exhausted"}, 1.0, "i1")
    assert Entry.loads(entry.slot, entry.dumps()) == entry
    assert account_key(" User0@Example.com ") == ACCOUNTS[0]
    assert "example" not in ACCOUNTS[0] and len(ACCOUNTS[0]) == 20
