"""Shared pool state converges: any interleaving of the same effects, in any order and with
repeats, leaves two replicas equal, and two instances' pools equal (through the real
`RedisShare.apply`, no Redis needed); a cooldown only extends; a newer decision wins."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from adapters.shared.merge import Entry, Replica, account_key, wins
from adapters.shared.redis_share import RedisShare
from engine.policy import load_policy
from engine.pool import AccountPool

ACCOUNTS = [account_key(f"user{i}@example.com") for i in range(3)]
FIELDS = [
    "cooldown:claude-sonnet-4-6",
    "cooldown:gemini-3-flash",
    "enabled",
    "invalid",
    "quota:claude-sonnet-4-6",
    "quota:gemini-3-flash",
]
WALL = 1_000_000.0  # the instances' wall clock while the entries are applied
NOW = 500.0  # their monotonic clock


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    field = draw(st.sampled_from(FIELDS))
    if field.startswith("cooldown:"):
        value = {
            "until": WALL - 10 + draw(st.integers(0, 50)) * 1.0,  # some already over
            "reason": draw(st.sampled_from(["a", "b"])),
        }
    elif field == "enabled":
        value = {"enabled": draw(st.booleans())}
    elif field.startswith("quota:"):
        value = {"fraction": draw(st.sampled_from([0.0, 0.25, 1.0]))}
    else:
        value = {"reason": draw(st.sampled_from([None, "revoked"])), "verify_url": None}
    return Entry(
        draw(st.sampled_from(ACCOUNTS)),
        field,
        value,
        WALL - draw(st.integers(0, 20)) * 1.0,
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


class FixedClock:
    def now(self) -> float:
        return NOW

    def wall(self) -> float:
        return WALL


def instance() -> tuple[RedisShare, AccountPool]:
    """An instance's link and pool, not connected: entries go in through `apply`."""
    ids = {f"a{i}": key for i, key in enumerate(ACCOUNTS)}
    share = RedisShare("redis://127.0.0.1:1/0", lambda: ids, clock=FixedClock(), instance="me")
    pool = AccountPool(load_policy(), list(ids), now=NOW)
    share.pool = pool
    return share, pool


def view(pool: AccountPool) -> dict[str, object]:
    """What the entries decide in a pool: flags, marks, cooldowns in force, quota."""
    return {
        a: (
            pool.account(a).enabled,
            pool.account(a).invalid_reason,
            {m: cd.until for m, cd in pool.cooldowns(a, NOW).items()},
            dict(pool.account(a).quota),
        )
        for a in pool.account_ids
    }


@given(st.lists(entries(), max_size=30), st.randoms(use_true_random=False))
def test_any_order_of_the_same_entries_gives_two_instances_equal_pools(
    effects: list[Entry], rng: object
) -> None:
    (first, first_pool), (second, second_pool) = instance(), instance()
    for entry in effects:
        first.apply(entry)
    shuffled = list(effects)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    for entry in shuffled + shuffled[: len(shuffled) // 2]:
        second.apply(entry)
    assert view(first_pool) == view(second_pool)
    kinds = {e.field.split(":")[0] for e in effects}
    event(f"fields: {', '.join(sorted(kinds)) or 'none'}")


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
