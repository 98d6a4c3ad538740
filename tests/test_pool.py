"""The account pool and the selection strategies (reference/seed-behaviour.md §2.3-§2.5),
synchronously: `now` is monotonic seconds, policy durations are milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.events import AllTargetsFailed, NoUsableAccount, PoolCoolingDown, TargetGranted
from engine.policy import Policy, load_policy
from engine.pool import AccountPool, Selection, UnknownAccount
from engine.store import AccountRecord, CooldownRecord, InMemoryStore
from engine.strategies import Hybrid
from tests.support import ENDPOINTS

MODEL = "claude-sonnet-4-6"
OTHER_MODEL = "gemini-3-flash"
VERIFY_URL = "https://accounts.google.com/signin/continue?sarp=1&scc=1"
REVOKED = "Token revoked - re-authentication required"


# helpers ------------------------------------------------------------------------------------
JS_THROTTLES = {"hybrid_emergency_throttle_ms": 250, "hybrid_last_resort_throttle_ms": 500}
"""The JS proxy's hybrid throttles (0 by default in interlock: no pause while usable)."""


def policy(strategy: str = "hybrid", **overrides: Any) -> Policy:
    return load_policy(overrides={"strategy": strategy, "endpoints": ENDPOINTS, **overrides})


def pool_of(
    ids: list[str], strategy: str = "hybrid", store: InMemoryStore | None = None, **overrides: Any
) -> AccountPool:
    return AccountPool(policy(strategy, **overrides), ids, store=store)


@dataclass
class Asker:
    """A request as `select` sees it."""

    account: str | None = None
    tried: set[str] = field(default_factory=set)
    sent: set[tuple[str, str]] = field(default_factory=set)
    avoid: set[tuple[str, str]] = field(default_factory=set)
    avoid_accounts: set[str] = field(default_factory=set)


def granted(selection: Selection) -> TargetGranted:
    assert isinstance(selection, TargetGranted), selection
    return selection


def pick(pool: AccountPool, now: float = 0.0, tried: tuple[str, ...] = ()) -> str:
    return granted(pool.select(MODEL, now, Asker(tried=set(tried)))).account


def picks(pool: AccountPool, n: int, now: float = 0.0) -> list[str]:
    return [pick(pool, now) for _ in range(n)]


def hybrid(pool: AccountPool) -> Hybrid:
    assert isinstance(pool.strategy, Hybrid)
    return pool.strategy


def health(pool: AccountPool, account_id: str, now: float) -> float:
    return hybrid(pool).health(pool.account(account_id), now)


def tokens(pool: AccountPool, account_id: str, now: float) -> float:
    return hybrid(pool).tokens(pool.account(account_id), now)


def set_tokens(pool: AccountPool, account_id: str, value: float, now: float) -> None:
    state = pool.account(account_id)
    state.tokens = value
    state.tokens_at = now


def stored(store: InMemoryStore, account_id: str) -> AccountRecord:
    records = {r.id: r for r in store.load(0.0)}
    return records[account_id]


# sticky -------------------------------------------------------------------------------------
def test_sticky_keeps_the_current_account_while_it_is_usable() -> None:
    pool = pool_of(["A", "B", "C"], "sticky")
    assert picks(pool, 4) == ["A", "A", "A", "A"]


def test_sticky_moves_to_the_next_usable_account_when_the_current_one_cools_down() -> None:
    pool = pool_of(["A", "B", "C"], "sticky")
    assert pick(pool, 0.0) == "A"
    pool.cool_down("A", MODEL, 30.0, "rate limited", 1.0)
    assert picks(pool, 2, 2.0) == ["B", "B"]
    # A is free again, but sticky stays on the account it moved to.
    assert pick(pool, 31.0) == "B"


def test_sticky_wraps_around_to_the_first_account_after_the_last_one() -> None:
    pool = pool_of(["A", "B", "C"], "sticky")
    pool.cool_down("A", MODEL, 10.0, "rate limited", 0.0)
    pool.cool_down("B", MODEL, 10.0, "rate limited", 0.0)
    assert pick(pool, 1.0) == "C"
    pool.cool_down("C", MODEL, 100.0, "rate limited", 20.0)
    assert pick(pool, 21.0) == "A"


def test_sticky_moves_on_when_the_current_account_becomes_invalid() -> None:
    pool = pool_of(["A", "B", "C"], "sticky")
    assert pick(pool) == "A"
    pool.mark_invalid("A", REVOKED, None, 1.0)
    assert picks(pool, 2, 2.0) == ["B", "B"]


def test_sticky_prefers_an_account_the_request_has_not_tried_yet() -> None:
    pool = pool_of(["A", "B", "C"], "sticky")
    assert pick(pool, tried=("A",)) == "B"
    assert pick(pool, tried=("A", "B")) == "C"


def test_sticky_falls_back_to_a_tried_account_when_every_usable_one_was_tried() -> None:
    pool = pool_of(["A", "B"], "sticky")
    assert pick(pool) == "A"
    assert pick(pool, tried=("A", "B")) == "A"


# round-robin --------------------------------------------------------------------------------
def test_round_robin_takes_the_next_account_each_time_and_wraps() -> None:
    pool = pool_of(["A", "B", "C"], "round-robin")
    assert picks(pool, 5) == ["A", "B", "C", "A", "B"]


def test_round_robin_skips_cooling_invalid_and_disabled_accounts() -> None:
    pool = pool_of(["A", "B", "C", "D", "E"], "round-robin")
    pool.cool_down("B", MODEL, 100.0, "rate limited", 0.0)
    pool.mark_invalid("C", REVOKED, None, 0.0)
    pool.set_enabled("D", False, 0.0)
    assert picks(pool, 4, 1.0) == ["A", "E", "A", "E"]
    # B's cooldown is only for MODEL: another model still rotates through it (one shared cursor).
    assert [granted(pool.select(OTHER_MODEL, 1.0, Asker())).account for _ in range(3)] == [
        "A",
        "B",
        "E",
    ]


# hybrid: health -----------------------------------------------------------------------------
def test_hybrid_health_starts_at_70_and_a_success_adds_1() -> None:
    pool = pool_of(["A"])
    assert health(pool, "A", 0.0) == 70
    pool.record_success("A", MODEL, 0.0)
    assert health(pool, "A", 0.0) == 71


def test_hybrid_health_loses_10_on_a_rate_limit() -> None:
    pool = pool_of(["A"])
    assert pool.note_rate_limit("A", MODEL, "r1", 0.0) == (False, 1)
    assert health(pool, "A", 0.0) == 60


def test_hybrid_health_is_not_penalised_by_a_duplicate_rate_limit() -> None:
    pool = pool_of(["A"])
    pool.note_rate_limit("A", MODEL, "r1", 0.0)
    assert pool.note_rate_limit("A", MODEL, "r2", 0.5) == (True, 1)
    assert health(pool, "A", 0.5) == pytest.approx(60, abs=0.01)


def test_hybrid_health_loses_20_on_a_failure() -> None:
    pool = pool_of(["A"])
    pool.record_target_failure("A", 0.0)
    assert health(pool, "A", 0.0) == 50


def test_hybrid_health_recovers_10_per_hour_lazily_and_folds_recovery_into_the_next_change() -> (
    None
):
    pool = pool_of(["A"])
    pool.record_target_failure("A", 0.0)
    assert health(pool, "A", 1800.0) == pytest.approx(55)
    assert health(pool, "A", 3600.0) == pytest.approx(60)
    pool.record_success("A", MODEL, 3600.0)
    assert health(pool, "A", 3600.0) == pytest.approx(61)
    assert health(pool, "A", 7200.0) == pytest.approx(71)


def test_hybrid_health_is_capped_at_100() -> None:
    pool = pool_of(["A"])
    for _ in range(40):
        pool.record_success("A", MODEL, 0.0)
    assert health(pool, "A", 0.0) == 100
    pool.record_target_failure("A", 0.0)
    assert health(pool, "A", 0.0) == 80
    assert health(pool, "A", 100 * 3600.0) == 100


def test_hybrid_health_is_floored_at_0_and_recovers_from_there() -> None:
    pool = pool_of(["A"])
    for _ in range(4):  # 70 - 4 x 20 would be -10
        pool.record_target_failure("A", 0.0)
    assert health(pool, "A", 0.0) == 0
    assert health(pool, "A", 360.0) == pytest.approx(1)


# hybrid: tokens -----------------------------------------------------------------------------
def test_hybrid_tokens_start_at_50_and_each_selection_consumes_one() -> None:
    pool = pool_of(["A"])
    assert tokens(pool, "A", 0.0) == 50
    picks(pool, 3)
    assert tokens(pool, "A", 0.0) == 47


def test_hybrid_a_selection_takes_an_account_from_10_tokens_to_9() -> None:
    pool = pool_of(["A"])
    set_tokens(pool, "A", 10.0, 0.0)
    assert pick(pool, 0.0) == "A"
    assert tokens(pool, "A", 0.0) == 9


def test_hybrid_tokens_refill_6_per_minute_up_to_the_maximum() -> None:
    pool = pool_of(["A"])
    set_tokens(pool, "A", 10.0, 0.0)
    assert tokens(pool, "A", 30.0) == pytest.approx(13)
    assert tokens(pool, "A", 60.0) == pytest.approx(16)
    assert tokens(pool, "A", 3600.0) == 50


def test_hybrid_a_failure_refunds_a_token_but_a_rate_limit_does_not() -> None:
    pool = pool_of(["A"])
    picks(pool, 2)
    assert tokens(pool, "A", 0.0) == 48
    pool.record_target_failure("A", 0.0)
    assert tokens(pool, "A", 0.0) == 49
    pool.note_rate_limit("A", MODEL, "r1", 0.0)
    assert tokens(pool, "A", 0.0) == 49


def test_hybrid_a_failure_refund_never_exceeds_the_maximum() -> None:
    pool = pool_of(["A"])
    pool.record_target_failure("A", 0.0)
    assert tokens(pool, "A", 0.0) == 50


# hybrid: score ------------------------------------------------------------------------------
def test_hybrid_score_of_an_unseen_account_is_70x2_plus_100x5_plus_50x3_plus_3600x0_1() -> None:
    pool = pool_of(["A"])
    score = hybrid(pool).score(pool.account("A"), MODEL, 0.0)
    assert score == pytest.approx(140 + 500 + 150 + 360)


def test_hybrid_score_uses_tokens_percent_and_idle_seconds_since_the_last_selection() -> None:
    pool = pool_of(["A"])
    pick(pool, 1000.0)  # tokens 49, last used at 1000
    # at 1005: health 70, tokens 49.5 -> 99 %, quota unknown 50, idle 5 s
    score = hybrid(pool).score(pool.account("A"), MODEL, 1005.0)
    assert score == pytest.approx(70 * 2 + 99 * 5 + 50 * 3 + 5 * 0.1)


def test_hybrid_idle_time_counts_at_most_3600_seconds() -> None:
    pool = pool_of(["A"])
    pick(pool, 0.0)
    at_hour = hybrid(pool).score(pool.account("A"), MODEL, 3600.0)
    at_two_hours = hybrid(pool).score(pool.account("A"), MODEL, 7200.0)
    assert at_hour == pytest.approx(140 + 500 + 150 + 360)
    assert at_two_hours == pytest.approx(at_hour)


def test_hybrid_quota_score_is_50_when_unknown_and_the_fraction_times_100_when_fresh() -> None:
    pool = pool_of(["A"])
    strategy = hybrid(pool)
    assert strategy.quota_score(pool.account("A"), MODEL, 0.0) == 50
    pool.update_quota("A", MODEL, 0.8, 0.0)
    assert strategy.quota_score(pool.account("A"), MODEL, 299.0) == pytest.approx(80)
    assert strategy.quota_score(pool.account("A"), OTHER_MODEL, 0.0) == 50
    assert strategy.score(pool.account("A"), MODEL, 0.0) == pytest.approx(140 + 500 + 240 + 360)


def test_hybrid_stale_quota_score_is_multiplied_by_0_9_after_stale_ms() -> None:
    pool = pool_of(["A"])
    pool.update_quota("A", MODEL, 0.8, 0.0)
    assert hybrid(pool).quota_score(pool.account("A"), MODEL, 300.0) == pytest.approx(72)
    score = hybrid(pool).score(pool.account("A"), MODEL, 300.0)
    assert score == pytest.approx(140 + 500 + 72 * 3 + 360)


def test_hybrid_picks_the_highest_score() -> None:
    pool = pool_of(["A", "B"])
    pool.update_quota("A", MODEL, 0.2, 0.0)
    pool.update_quota("B", MODEL, 0.9, 0.0)
    assert pick(pool, 0.0) == "B"


# hybrid: levels -----------------------------------------------------------------------------
def test_hybrid_passes_over_an_unhealthy_account_while_a_healthy_one_exists() -> None:
    pool = pool_of(["A", "B"])
    pool.record_target_failure("A", 0.0)
    pool.record_target_failure("A", 0.0)  # health 30
    pool.account("B").last_used = 0.0  # B loses the 360 idle points
    strategy = hybrid(pool)
    # By score alone A would win: 30x2 + 500 + 150 + 360 = 1070 > 70x2 + 500 + 150 + 0 = 790.
    a_score = strategy.score(pool.account("A"), MODEL, 0.0)
    b_score = strategy.score(pool.account("B"), MODEL, 0.0)
    assert a_score > b_score
    assert granted(pool.select(MODEL, 0.0, Asker())) == TargetGranted(
        account="B", endpoint="daily", throttle_ms=0
    )


def test_hybrid_passes_over_a_fresh_quota_critical_account_at_the_normal_level() -> None:
    pool = pool_of(["A", "B"])
    pool.update_quota("A", MODEL, 0.05, 0.0)
    pool.account("B").last_used = 0.0
    strategy = hybrid(pool)
    # By score alone A would win: 140 + 500 + 15 + 360 = 1015 > 140 + 500 + 150 + 0 = 790.
    assert strategy.score(pool.account("A"), MODEL, 0.0) > strategy.score(
        pool.account("B"), MODEL, 0.0
    )
    assert granted(pool.select(MODEL, 0.0, Asker())) == TargetGranted(
        account="B", endpoint="daily", throttle_ms=0
    )


def test_hybrid_a_stale_low_quota_is_not_critical() -> None:
    pool = pool_of(["A", "B"])
    pool.update_quota("A", MODEL, 0.05, 0.0)
    pool.account("B").last_used = 300.0
    assert pick(pool, 300.0) == "A"


def test_hybrid_uses_the_quota_level_without_throttle_when_every_account_is_quota_critical() -> (
    None
):
    pool = pool_of(["A", "B"])
    pool.update_quota("A", MODEL, 0.01, 0.0)
    pool.update_quota("B", MODEL, 0.04, 0.0)
    assert granted(pool.select(MODEL, 0.0, Asker())) == TargetGranted(
        account="B", endpoint="daily", throttle_ms=0
    )
    assert tokens(pool, "B", 0.0) == 49


def test_hybrid_emergency_level_takes_an_unhealthy_account_with_tokens_and_throttles_250() -> None:
    pool = pool_of(["A", "B"], **JS_THROTTLES)
    for account in ("A", "B"):
        pool.record_target_failure(account, 0.0)
        pool.record_target_failure(account, 0.0)  # health 30, tokens still 50
    set_tokens(pool, "A", 0.0, 0.0)
    assert granted(pool.select(MODEL, 0.0, Asker())) == TargetGranted(
        account="B", endpoint="daily", throttle_ms=250
    )
    assert tokens(pool, "B", 0.0) == 49


def test_hybrid_last_resort_level_takes_an_account_without_tokens_and_throttles_500() -> None:
    pool = pool_of(["A", "B"], **JS_THROTTLES)
    set_tokens(pool, "A", 0.5, 0.0)
    set_tokens(pool, "B", 0.0, 0.0)
    assert granted(pool.select(MODEL, 0.0, Asker())) == TargetGranted(
        account="A", endpoint="daily", throttle_ms=500
    )
    # lastResort does not consume a token.
    assert tokens(pool, "A", 0.0) == 0.5
    assert tokens(pool, "B", 0.0) == 0


def test_hybrid_ties_go_to_the_earliest_account_in_pool_order() -> None:
    assert pick(pool_of(["A", "B", "C"])) == "A"
    assert pick(pool_of(["C", "B", "A"])) == "C"


# select: nothing to grant -------------------------------------------------------------------
def test_select_without_accounts_reports_that_none_are_configured() -> None:
    pool = pool_of([])
    assert pool.select(MODEL, 0.0, Asker()) == NoUsableAccount(
        reasons=("no accounts are configured",)
    )


def test_select_with_every_account_disabled_reports_the_count_and_the_accounts() -> None:
    pool = pool_of(["acct-1", "acct-2"])
    pool.set_enabled("acct-1", False, 0.0)
    pool.set_enabled("acct-2", False, 0.0)
    assert pool.select(MODEL, 0.0, Asker()) == NoUsableAccount(
        reasons=("2 accounts disabled (acct-1, acct-2)",)
    )


def test_select_with_every_account_invalid_reports_which_accounts_and_why_but_no_url() -> None:
    pool = pool_of(["acct-a", "acct-b", "acct-c"])
    pool.mark_invalid("acct-a", REVOKED, None, 0.0)
    pool.mark_invalid("acct-b", REVOKED, None, 0.0)
    pool.mark_invalid("acct-c", "Account requires verification", VERIFY_URL, 0.0)
    selection = pool.select(MODEL, 0.0, Asker())
    assert selection == NoUsableAccount(
        reasons=(
            f"2 accounts invalid: {REVOKED} (acct-a, acct-b)",
            "1 account invalid: Account requires verification (acct-c)",
        )
    )
    assert VERIFY_URL not in " ".join(selection.reasons)


def test_select_names_at_most_ten_accounts_per_reason() -> None:
    ids = [f"acct-{i:02d}" for i in range(12)]
    pool = pool_of(ids)
    for account in ids:
        pool.set_enabled(account, False, 0.0)
    (reason,) = pool.select(MODEL, 0.0, Asker()).reasons  # type: ignore[union-attr]
    assert reason.endswith("acct-09 and 2 more)")


def test_select_with_disabled_and_invalid_accounts_reports_both() -> None:
    pool = pool_of(["A", "B"])
    pool.set_enabled("A", False, 0.0)
    pool.mark_invalid("B", REVOKED, None, 0.0)
    assert pool.select(MODEL, 0.0, Asker()) == NoUsableAccount(
        reasons=("1 account disabled (A)", f"1 account invalid: {REVOKED} (B)")
    )


def test_select_reports_the_earliest_reset_when_every_valid_account_cools_down_for_the_model() -> (
    None
):
    pool = pool_of(["A", "B", "C"])
    pool.cool_down("A", MODEL, 30.0, "quota", 0.0)
    pool.cool_down("B", MODEL, 20.0, "quota", 0.0)
    pool.set_enabled("C", False, 0.0)  # not valid: does not count
    assert pool.select(MODEL, 1.0, Asker()) == PoolCoolingDown(until=20.0, cause="rate_limit")
    assert granted(pool.select(OTHER_MODEL, 1.0, Asker())).account == "A"
    assert pick(pool, 20.0) == "B"


# cooldowns ----------------------------------------------------------------------------------
def test_a_cooldown_only_ever_extends() -> None:
    pool = pool_of(["A"])
    assert pool.cool_down("A", MODEL, 50.0, "quota", 0.0) == 50.0
    assert pool.cool_down("A", MODEL, 20.0, "rate limited", 1.0) == 50.0
    cooldown = pool.cooldown("A", MODEL, 2.0)
    assert cooldown is not None
    assert (cooldown.until, cooldown.reason) == (50.0, "quota")
    assert pool.cool_down("A", MODEL, 80.0, "capacity", 3.0) == 80.0
    cooldown = pool.cooldown("A", MODEL, 4.0)
    assert cooldown is not None
    assert (cooldown.until, cooldown.reason) == (80.0, "capacity")


def test_a_cooldown_is_gone_once_it_has_expired() -> None:
    pool = pool_of(["A"])
    pool.cool_down("A", MODEL, 50.0, "quota", 0.0)
    assert pool.cooldown("A", MODEL, 49.9) is not None
    assert not pool.usable("A", MODEL, 49.9)
    assert pool.cooldown("A", MODEL, 50.0) is None
    assert pool.usable("A", MODEL, 50.0)
    assert pool.cooldown("A", OTHER_MODEL, 0.0) is None


def test_a_cooldown_is_lifted_early_only_by_the_reason_that_set_it() -> None:
    store = InMemoryStore()
    pool = pool_of(["A", "B"], store=store)
    pool.cool_down("A", MODEL, 50.0, "reported empty", 0.0)
    pool.cool_down("B", MODEL, 50.0, "quota exhausted", 0.0)
    assert not pool.lift_cooldown("B", MODEL, "reported empty", 1.0)  # a 429's: kept
    assert not pool.lift_cooldown("A", OTHER_MODEL, "reported empty", 1.0)
    assert pool.lift_cooldown("A", MODEL, "reported empty", 1.0)
    assert pool.usable("A", MODEL, 1.0) and not pool.usable("B", MODEL, 1.0)
    assert stored(store, "A").cooldowns == {}
    assert MODEL in stored(store, "B").cooldowns


def test_a_cooldown_a_429_extended_is_no_longer_lifted_by_the_reason_that_first_set_it() -> None:
    pool = pool_of(["A"])
    pool.cool_down("A", MODEL, 50.0, "reported empty", 0.0)
    pool.cool_down("A", MODEL, 90.0, "quota exhausted", 1.0)
    assert not pool.lift_cooldown("A", MODEL, "reported empty", 2.0)
    assert not pool.usable("A", MODEL, 2.0)


def test_an_expired_cooldown_is_not_lifted_again() -> None:
    store = InMemoryStore()
    pool = pool_of(["A"], store=store)
    pool.cool_down("A", MODEL, 50.0, "reported empty", 0.0)
    writes = store.writes
    assert not pool.lift_cooldown("A", MODEL, "reported empty", 50.0)
    assert store.writes == writes


# note_rate_limit ----------------------------------------------------------------------------
def test_a_429_from_another_request_inside_the_dedup_window_is_a_duplicate() -> None:
    pool = pool_of(["A"])
    assert pool.note_rate_limit("A", MODEL, "r1", 0.0) == (False, 1)
    assert pool.note_rate_limit("A", MODEL, "r2", 1.9) == (True, 1)
    # after the 2 s window another request's 429 counts again
    assert pool.note_rate_limit("A", MODEL, "r2", 2.0) == (False, 2)


def test_a_second_429_from_the_same_request_is_not_a_duplicate() -> None:
    pool = pool_of(["A"])
    assert pool.note_rate_limit("A", MODEL, "r1", 0.0) == (False, 1)
    assert pool.note_rate_limit("A", MODEL, "r1", 0.5) == (False, 2)


def test_429s_on_another_model_or_account_are_not_duplicates() -> None:
    pool = pool_of(["A", "B"])
    assert pool.note_rate_limit("A", MODEL, "r1", 0.0) == (False, 1)
    assert pool.note_rate_limit("A", OTHER_MODEL, "r2", 0.1) == (False, 1)
    assert pool.note_rate_limit("B", MODEL, "r2", 0.1) == (False, 1)


def test_rate_limit_strikes_keep_growing_through_calm_until_a_success() -> None:
    # Since 1f12abe the strikes (the quota tier index) no longer restart after a calm period:
    # like the JS proxy's consecutive-failure index, only a success clears them.
    pool = pool_of(["A"])
    assert pool.note_rate_limit("A", MODEL, "r1", 0.0) == (False, 1)
    assert pool.note_rate_limit("A", MODEL, "r1", 100.0) == (False, 2)
    assert pool.note_rate_limit("A", MODEL, "r1", 3600.0) == (False, 3)
    assert pool.note_rate_limit("A", MODEL, "r2", 86_400.0) == (False, 4)


def test_a_success_clears_rate_limit_strikes() -> None:
    pool = pool_of(["A"])
    pool.note_rate_limit("A", MODEL, "r1", 0.0)
    pool.note_rate_limit("A", MODEL, "r1", 1.0)
    pool.record_success("A", MODEL, 1.5)
    assert pool.note_rate_limit("A", MODEL, "r2", 1.6) == (False, 1)


# leases -------------------------------------------------------------------------------------
def test_select_leases_an_account_and_release_returns_it() -> None:
    pool = pool_of(["A", "B"], "round-robin")
    assert pool.leases() == 0
    picks(pool, 3)  # A, B, A
    assert (pool.account("A").leases, pool.account("B").leases) == (2, 1)
    assert pool.leases() == 3
    pool.release("A")
    assert pool.account("A").leases == 1
    assert pool.leases() == 2


def test_no_lease_is_taken_when_nothing_is_granted() -> None:
    pool = pool_of(["A"])
    pool.cool_down("A", MODEL, 10.0, "quota", 0.0)
    assert isinstance(pool.select(MODEL, 1.0, Asker()), PoolCoolingDown)
    assert pool.leases() == 0


# targets: endpoints, rests, breakers, budgets (v2) ----------------------------------------
def test_the_current_account_keeps_going_on_its_next_endpoint() -> None:
    pool = pool_of(["A", "B"], "round-robin")
    asker = Asker(account="A", tried={"A"}, sent={("A", "daily")}, avoid={("A", "daily")})
    assert granted(pool.select(MODEL, 0.0, asker)) == TargetGranted(
        account="A", endpoint="prod", throttle_ms=0
    )


def test_once_its_account_has_no_target_left_an_untried_account_is_granted() -> None:
    pool = pool_of(["A", "B"], "sticky")
    avoid = {("A", "daily"), ("A", "prod")}
    asker = Asker(account="A", tried={"A"}, avoid=avoid)
    assert granted(pool.select(MODEL, 0.0, asker)).account == "B"


def test_when_every_target_failed_for_the_request_the_pool_says_so() -> None:
    pool = pool_of(["A"])
    asker = Asker(account="A", tried={"A"}, avoid={("A", "daily"), ("A", "prod")})
    assert pool.select(MODEL, 0.0, asker) == AllTargetsFailed()
    assert pool.leases() == 0


def test_an_account_the_request_gave_up_is_not_granted() -> None:
    pool = pool_of(["A", "B"], "sticky")
    assert granted(pool.select(MODEL, 0.0, Asker(avoid_accounts={"A"}))).account == "B"


def test_a_resting_target_is_skipped_for_the_other_endpoint_of_the_same_account() -> None:
    pool = pool_of(["A"])
    pool.rest_target("A", MODEL, "daily", 30.0, "capacity exhausted")
    assert granted(pool.select(MODEL, 0.0, Asker())).endpoint == "prod"
    assert granted(pool.select(OTHER_MODEL, 0.0, Asker())).endpoint == "daily"


def test_when_every_target_rests_the_pool_names_the_earliest_end_and_its_cause() -> None:
    pool = pool_of(["A"])
    pool.rest_target("A", MODEL, "daily", 30.0, "capacity exhausted")
    pool.rest_target("A", MODEL, "prod", 12.0, "capacity exhausted")
    assert pool.select(MODEL, 0.0, Asker()) == PoolCoolingDown(until=12.0, cause="capacity")


def test_a_target_rest_only_ever_extends() -> None:
    pool = pool_of(["A"])
    assert pool.rest_target("A", MODEL, "daily", 30.0, "capacity") == 30.0
    assert pool.rest_target("A", MODEL, "daily", 10.0, "capacity") == 30.0


def open_breaker(pool: AccountPool, endpoint: str, now: float = 0.0) -> None:
    for _ in range(pool.policy.breaker.failures_to_open):
        pool.endpoints[endpoint].failed(now)


def test_an_endpoint_whose_breaker_is_open_is_skipped_until_its_probe_is_due() -> None:
    pool = pool_of(["A", "B"], "round-robin")
    open_breaker(pool, "daily")
    assert granted(pool.select(MODEL, 0.5, Asker())).endpoint == "prod"
    probe = granted(pool.select(MODEL, 1.0, Asker()))  # first_probe_ms = 1000
    assert (probe.endpoint, probe.probe) == ("daily", True)
    assert granted(pool.select(MODEL, 1.0, Asker())).endpoint == "prod"  # one probe at a time


def test_an_answered_probe_closes_the_breaker_and_a_failed_one_reopens_it() -> None:
    pool = pool_of(["A"], breaker={"steady_probes": 0})
    health = pool.endpoints["daily"]
    open_breaker(pool, "daily")
    assert health.granted(1.0)
    health.failed(1.1)
    assert (health.state, health.probe_at) == ("open", pytest.approx(3.1))
    assert health.granted(3.1)
    health.answered(3.2)
    assert (health.state, health.failures, health.interval_ms) == ("closed", 0, 1000)


def test_every_endpoint_open_makes_the_pool_name_the_next_probe() -> None:
    pool = pool_of(["A"])
    open_breaker(pool, "daily", 0.0)
    open_breaker(pool, "prod", 0.5)
    assert pool.select(MODEL, 0.2, Asker()) == PoolCoolingDown(until=1.0, cause="endpoint")


def test_retrying_a_target_the_request_sent_to_costs_its_endpoint_a_budget_token() -> None:
    pool = pool_of(["A"], endpoint_budget={"max_tokens": 2, "refill_per_s": 1})
    health = pool.endpoints["daily"]
    asker = Asker(account="A", tried={"A"}, sent={("A", "daily")})
    granted(pool.select(MODEL, 0.0, asker))
    granted(pool.select(MODEL, 0.0, asker))
    assert health.tokens == 0
    fresh = granted(pool.select(MODEL, 0.0, Asker()))  # a first attempt never pays
    assert fresh.endpoint == "daily" and health.tokens == 0


def test_without_budget_a_retry_goes_to_another_endpoint_or_waits_for_the_refill() -> None:
    pool = pool_of(["A"], endpoint_budget={"max_tokens": 1, "refill_per_s": 2})
    pool.endpoints["daily"].spend(0.0)
    asker = Asker(account="A", tried={"A"}, sent={("A", "daily")})
    assert granted(pool.select(MODEL, 0.0, asker)).endpoint == "prod"
    asker.avoid.add(("A", "prod"))
    assert pool.select(MODEL, 0.0, asker) == PoolCoolingDown(until=0.5, cause="budget")


def test_another_account_usable_says_whether_switching_could_serve() -> None:
    pool = pool_of(["A", "B"])
    assert pool.other_account_usable(MODEL, 0.0, Asker(account="A"))
    pool.cool_down("B", MODEL, 10.0, "quota", 0.0)
    assert not pool.other_account_usable(MODEL, 0.0, Asker(account="A"))


# persistence --------------------------------------------------------------------------------
def test_a_cooldown_writes_the_account_record_to_the_store() -> None:
    store = InMemoryStore()
    pool = pool_of(["A", "B"], store=store)
    assert store.writes == 0
    pool.cool_down("A", MODEL, 50.0, "quota", 0.0)
    assert store.writes == 1
    assert stored(store, "A") == AccountRecord(
        id="A", cooldowns={MODEL: CooldownRecord(until=50.0, reason="quota")}
    )
    pool.cool_down("A", MODEL, 40.0, "rate limited", 1.0)  # no change: nothing to write
    assert store.writes == 1


def test_mark_invalid_and_set_enabled_write_the_account_record_to_the_store() -> None:
    store = InMemoryStore()
    pool = pool_of(["A", "B"], store=store)
    pool.mark_invalid("A", "Account requires verification", VERIFY_URL, 0.0)
    assert store.writes == 1
    record = stored(store, "A")
    assert (record.invalid_reason, record.verify_url) == (
        "Account requires verification",
        VERIFY_URL,
    )
    pool.set_enabled("B", False, 0.0)
    assert store.writes == 2
    assert not stored(store, "B").enabled
    pool.set_enabled("B", True, 1.0)
    assert store.writes == 3
    assert stored(store, "B").enabled


def test_a_new_pool_on_the_same_store_gets_cooldowns_invalid_marks_and_disabled_flags_back() -> (
    None
):
    store = InMemoryStore()
    before = pool_of(["A", "B", "C", "D"], store=store)
    before.cool_down("A", MODEL, 500.0, "quota", 0.0)
    before.mark_invalid("B", REVOKED, None, 0.0)
    before.set_enabled("C", False, 0.0)

    after = pool_of(["A", "B", "C", "D"], store=store)
    assert after.account_ids == ["A", "B", "C", "D"]
    cooldown = after.cooldown("A", MODEL, 10.0)
    assert cooldown is not None
    assert (cooldown.until, cooldown.reason) == (500.0, "quota")
    assert after.account("B").invalid_reason == REVOKED
    assert not after.account("C").enabled
    assert after.usable("D", MODEL, 10.0)
    assert pick(after, 10.0) == "D"


def test_removing_an_account_forgets_it_in_the_pool_and_the_store() -> None:
    store = InMemoryStore()
    pool = pool_of(["A", "B"], store=store)
    pool.cool_down("A", MODEL, 50.0, "quota", 0.0)
    pool.cool_down("B", MODEL, 50.0, "quota", 0.0)
    pool.remove_account("A")
    assert pool.account_ids == ["B"]
    assert [r.id for r in store.load(0.0)] == ["B"]
    pool.add_account("A", 1.0)
    assert pool.cooldown("A", MODEL, 1.0) is None


# validity -----------------------------------------------------------------------------------
def test_mark_invalid_keeps_the_verify_url_and_clear_invalid_clears_it() -> None:
    store = InMemoryStore()
    pool = pool_of(["A"], store=store)
    pool.mark_invalid("A", "Account requires verification", VERIFY_URL, 0.0)
    state = pool.account("A")
    assert (state.invalid_reason, state.verify_url, state.valid) == (
        "Account requires verification",
        VERIFY_URL,
        False,
    )
    pool.clear_invalid("A", 1.0)
    assert (state.invalid_reason, state.verify_url, state.valid) == (None, None, True)
    record = stored(store, "A")
    assert (record.invalid_reason, record.verify_url) == (None, None)
    assert pick(pool, 1.0) == "A"


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.account("Z"),
        lambda p: p.usable("Z", MODEL, 0.0),
        lambda p: p.set_enabled("Z", False, 0.0),
        lambda p: p.mark_invalid("Z", REVOKED, None, 0.0),
        lambda p: p.clear_invalid("Z", 0.0),
        lambda p: p.update_quota("Z", MODEL, 0.5, 0.0),
        lambda p: p.cool_down("Z", MODEL, 10.0, "quota", 0.0),
        lambda p: p.note_rate_limit("Z", MODEL, "r1", 0.0),
        lambda p: p.record_target_failure("Z", 0.0),
        lambda p: p.rest_target("Z", MODEL, "daily", 10.0, "capacity"),
        lambda p: p.record_success("Z", MODEL, 0.0),
        lambda p: p.remove_account("Z"),
    ],
    ids=[
        "account",
        "usable",
        "set_enabled",
        "mark_invalid",
        "clear_invalid",
        "update_quota",
        "cool_down",
        "note_rate_limit",
        "record_target_failure",
        "rest_target",
        "record_success",
        "remove_account",
    ],
)
def test_an_unknown_account_id_raises_unknown_account(call: Any) -> None:
    store = InMemoryStore()
    pool = pool_of(["A"], store=store)
    with pytest.raises(UnknownAccount):
        call(pool)
    assert store.writes == 0


def test_a_rejected_call_for_an_unknown_account_leaves_no_trace() -> None:
    pool = pool_of(["A"])
    with pytest.raises(UnknownAccount):
        pool.cool_down("Z", MODEL, 10.0, "quota", 0.0)
    for request_id in ("r1", "r2"):
        with pytest.raises(UnknownAccount):
            pool.note_rate_limit("Z", MODEL, request_id, 0.1)
    pool.add_account("Z", 1.0)
    assert pool.cooldown("Z", MODEL, 1.0) is None
    assert pool.note_rate_limit("Z", MODEL, "r3", 1.0) == (False, 1)


class FailingStore(InMemoryStore):
    """A store whose every write fails (a full disk, a locked database)."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith(("save_", "remove_")):
            return self.fail
        return super().__getattribute__(name)

    def fail(self, *args: Any) -> None:
        raise OSError("disk full")


def test_a_failing_store_never_fails_the_pool_call_that_changed_something() -> None:
    store = FailingStore()
    pool = pool_of(["A", "B"], store=store)
    assert pool.cool_down("A", MODEL, 50.0, "quota", 0.0) == 50.0
    pool.mark_invalid("B", REVOKED, None, 0.0)
    pool.set_enabled("A", False, 0.0)
    pool.clear_invalid("B", 0.0)
    cooldown = pool.cooldown("A", MODEL, 1.0)
    assert cooldown is not None and cooldown.until == 50.0
    assert not pool.account("A").enabled and pool.account("B").valid
    assert pool.store_failures == 4
    assert pool.last_store_error == "OSError: disk full"


# reconciling with changes another writer made in the store ----------------------------------
def records(*specs: tuple[str, dict[str, Any]]) -> dict[str, AccountRecord]:
    return {account_id: AccountRecord(id=account_id, **fields) for account_id, fields in specs}


def test_accounts_added_in_the_store_are_served_and_removed_ones_are_not() -> None:
    known = records(("A", {}), ("B", {}))
    pool = AccountPool(policy("round-robin"), store=InMemoryStore(list(known.values())))
    stored_now = records(
        ("B", {}),
        ("C", {"cooldowns": {OTHER_MODEL: CooldownRecord(until=50.0, reason="quota")}}),
    )
    changes = pool.reconcile(known, stored_now.values(), 1.0)
    assert [(c.account, c.change) for c in changes] == [("A", "removed"), ("C", "added")]
    assert pool.account_ids == ["B", "C"]
    assert sorted(picks(pool, 4, 1.0)) == ["B", "B", "C", "C"]
    assert pool.cooldown("C", OTHER_MODEL, 1.0) is not None


def test_enable_disable_and_a_cleared_invalid_mark_in_the_store_replace_the_pools() -> None:
    known = records(("A", {}), ("B", {"enabled": False}), ("C", {"invalid_reason": REVOKED}))
    pool = AccountPool(policy(), store=InMemoryStore(list(known.values())))
    stored_now = records(("A", {"enabled": False}), ("B", {}), ("C", {}))
    changes = pool.reconcile(known, stored_now.values(), 1.0)
    assert [(c.account, c.change) for c in changes] == [
        ("A", "disabled"),
        ("B", "enabled"),
        ("C", "valid"),
    ]
    assert not pool.account("A").enabled
    assert pool.account("B").valid and pool.account("C").valid


def test_a_store_read_older_than_the_pools_own_change_never_undoes_it() -> None:
    known = records(("A", {}), ("B", {}))
    store = InMemoryStore(list(known.values()))
    pool = AccountPool(policy(), store=store)
    pool.mark_invalid("A", REVOKED, None, 1.0)  # the store has not caught up when it is read
    pool.set_enabled("B", False, 1.0)
    assert pool.reconcile(known, known.values(), 2.0) == []
    assert pool.account("A").invalid_reason == REVOKED and not pool.account("B").enabled


def test_an_account_removed_while_a_request_holds_it_serves_that_request_to_its_end() -> None:
    known = records(("A", {}), ("B", {}))
    store = InMemoryStore(list(known.values()))
    pool = AccountPool(policy("sticky"), store=store)
    assert pick(pool) == "A"  # a request leases A
    pool.reconcile(known, [known["B"]], 1.0)  # `interlock accounts remove A`
    assert pool.account_ids == ["B"] and pick(pool, 1.0) == "B"
    assert not pool.usable("A", MODEL, 1.0)  # the request will not send to A again
    pool.cool_down("A", MODEL, 60.0, "quota", 1.0)  # its outcome is still recorded safely,
    pool.record_success("A", MODEL, 1.0)
    pool.mark_invalid("A", REVOKED, None, 1.0)
    assert store.writes == 0  # but never written back: A stays removed
    pool.release("A")
    pool.release("B")
    assert pool.leases() == 0
    with pytest.raises(UnknownAccount):
        pool.account("A")


def test_a_removed_account_added_again_is_served_again() -> None:
    known = records(("A", {}), ("B", {}))
    pool = AccountPool(policy("round-robin"), store=InMemoryStore(list(known.values())))
    pick(pool)
    pool.reconcile(known, [known["B"]], 1.0)
    pool.reconcile({"B": known["B"]}, known.values(), 2.0)
    assert sorted(pool.account_ids) == ["A", "B"]
    assert pool.usable("A", MODEL, 2.0)


def test_by_default_the_hybrid_strategy_never_asks_for_a_throttle_pause() -> None:
    pool = pool_of(["A", "B"])
    set_tokens(pool, "A", 0.5, 0.0)
    set_tokens(pool, "B", 0.0, 0.0)
    assert granted(pool.select(MODEL, 0.0, Asker())).throttle_ms == 0


def test_a_cooldown_a_person_cleared_in_the_store_is_cleared_in_the_pool() -> None:
    quota = {"cooldowns": {MODEL: CooldownRecord(until=3600.0, reason="quota")}}
    known = records(("A", quota), ("B", {}))
    pool = AccountPool(policy(), store=InMemoryStore(list(known.values())))
    assert pool.cooldown("A", MODEL, 1.0) is not None
    changes = pool.reconcile(known, records(("A", {}), ("B", {})).values(), 1.0)
    assert [(c.account, c.change, c.model) for c in changes] == [("A", "uncooled", MODEL)]
    assert pool.cooldown("A", MODEL, 1.0) is None


def test_a_longer_cooldown_another_process_wrote_in_the_store_is_adopted() -> None:
    known = records(("A", {}), ("B", {}))
    pool = AccountPool(policy(), store=InMemoryStore(list(known.values())))
    pool.cool_down("B", MODEL, 50.0, "rate limited", 1.0)
    theirs = {
        "A": {"cooldowns": {MODEL: CooldownRecord(until=3600.0, reason="quota exhausted")}},
        "B": {"cooldowns": {MODEL: CooldownRecord(until=50.2, reason="rate limited")}},
    }
    changes = pool.reconcile(known, records(("A", theirs["A"]), ("B", theirs["B"])).values(), 1.0)
    assert [(c.account, c.change, c.model) for c in changes] == [("A", "cooled", MODEL)]
    cooldown = pool.cooldown("A", MODEL, 2.0)
    assert cooldown is not None and (cooldown.until, cooldown.reason) == (3600.0, "quota exhausted")
    assert pool.cooldown("B", MODEL, 2.0).until == 50.0  # a few ms later: its own, read back


def test_a_shorter_or_ended_stored_cooldown_changes_nothing() -> None:
    known = records(("A", {}))
    pool = AccountPool(policy(), store=InMemoryStore(list(known.values())))
    pool.cool_down("A", MODEL, 600.0, "quota exhausted", 1.0)
    stored = {"cooldowns": {MODEL: CooldownRecord(until=60.0, reason="rate limited")}}
    assert pool.reconcile(known, records(("A", stored)).values(), 1.0) == []
    ended = {"cooldowns": {OTHER_MODEL: CooldownRecord(until=0.5, reason="rate limited")}}
    assert pool.reconcile(known, records(("A", ended)).values(), 1.0) == []
    assert pool.cooldown("A", OTHER_MODEL, 1.0) is None
