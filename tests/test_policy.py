"""The retry policy: defaults are the JavaScript proxy's constants (reference/seed-behaviour.md
§1.1, §2.3), the presets are §6.3's, and invalid configuration fails at load naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.policy import Policy, PolicyError, load_policy

# Defaults: (field, the JavaScript constant it stands for, its value) ------------------------------
JS_DEFAULTS: list[tuple[str, str, Any]] = [
    ("strategy", "DEFAULT_SELECTION_STRATEGY", "hybrid"),
    ("max_retries", "MAX_RETRIES", 5),
    ("max_wait_before_error_ms", "MAX_WAIT_BEFORE_ERROR_MS", 120_000),
    ("rate_limit_dedup_window_ms", "RATE_LIMIT_DEDUP_WINDOW_MS", 2000),
    (
        "capacity_backoff_tiers_ms",
        "CAPACITY_BACKOFF_TIERS_MS",
        (5000, 10_000, 20_000, 30_000, 60_000),
    ),
    ("max_capacity_retries", "MAX_CAPACITY_RETRIES (now per target)", 5),
    ("rate_limit_backoff_ms", "BACKOFF_BY_ERROR_TYPE.RATE_LIMIT_EXCEEDED", 30_000),
    (
        "quota_backoff_tiers_ms",
        "QUOTA_EXHAUSTED_BACKOFF_TIERS_MS",
        (60_000, 300_000, 1_800_000, 7_200_000),
    ),
    ("empty_retry_base_ms", "empty-response backoff 500 * 2^n", 500),
    ("max_retry_rounds", "MAX_EMPTY_RESPONSE_RETRIES (now rounds over every target)", 2),
    ("server_error_pause_ms", "1000 ms sleep after a 5xx", 1000),
    ("global_quota_threshold", "config globalQuotaThreshold", 0),
    ("fallback_enabled", "--fallback is off by default", False),
    ("max_fallback_depth", "fallback recursion is one hop", 1),
    (
        "fallback_chains",
        "MODEL_FALLBACK_MAP",
        {
            "gemini-3.1-pro-high": ("claude-opus-4-6-thinking",),
            "gemini-3.1-pro-low": ("claude-sonnet-4-6",),
            "gemini-3-flash": ("claude-sonnet-4-6",),
            "claude-opus-4-6-thinking": ("gemini-3.1-pro-high",),
            "claude-sonnet-4-6": ("gemini-3-flash",),
        },
    ),
    (
        "health",
        "accountSelection.healthScore",
        {
            "initial": 70,
            "success_reward": 1,
            "rate_limit_penalty": -10,
            "failure_penalty": -20,
            "recovery_per_hour": 10,
            "min_usable": 50,
            "max_score": 100,
        },
    ),
    (
        "token_bucket",
        "accountSelection.tokenBucket",
        {"max_tokens": 50, "tokens_per_minute": 6, "initial_tokens": 50},
    ),
    (
        "quota",
        "accountSelection.quota",
        {"low_threshold": 0.10, "critical_threshold": 0.05, "stale_ms": 300_000},
    ),
    (
        "weights",
        "accountSelection.weights",
        {"health": 2, "tokens": 5, "quota": 3, "lru": 0.1},
    ),
]
#: Fields the JavaScript proxy has no constant for (bounds it lacks, behaviour it hard-codes).
NEW_FIELDS = {
    "endpoints",  # the adapter's names (Cloud Code: daily, then prod; tests/test_config.py)
    "deadline_ms",
    "max_rate_limit_retries",
    "max_pool_waits",
    "breaker",
    "endpoint_budget",
    "switch_account_delay_ms",  # SWITCH_ACCOUNT_DELAY_MS was 5000; 0 here (DESIGN §2.1)
    "hybrid_emergency_throttle_ms",  # 250 in JS; 0 here: no pause while a target is usable
    "hybrid_last_resort_throttle_ms",  # 500 in JS; 0 here
    "empty_response_placeholder",
}


def dumped(policy: Policy, field: str) -> Any:
    return policy.model_dump()[field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param(field, value, id=f"{field}={constant}")
        for field, constant, value in JS_DEFAULTS
    ],
)
def test_the_default_policy_equals_the_javascript_constant(field: str, value: Any) -> None:
    assert dumped(Policy(), field) == value
    assert dumped(load_policy(), field) == value


def test_every_policy_field_is_either_a_javascript_constant_or_a_declared_new_bound() -> None:
    known = {field for field, _, _ in JS_DEFAULTS}
    assert not known & NEW_FIELDS
    assert known | NEW_FIELDS == set(Policy.model_fields)


def test_the_default_preset_is_the_default_policy() -> None:
    assert load_policy("default") == Policy()


# Presets (§6.3) ----------------------------------------------------------------------------------
MANY_ACCOUNTS: dict[str, Any] = {
    "strategy": "hybrid",
    "max_retries": 3,
    "max_wait_before_error_ms": 60_000,
    "global_quota_threshold": 0.10,
    "rate_limit_dedup_window_ms": 1000,
    "breaker": {
        "failures_to_open": 2,
        "first_probe_ms": 1000,
        "steady_probes": 3,
        "max_probe_ms": 30_000,
    },
    "max_capacity_retries": 3,
    "capacity_backoff_tiers_ms": (3000, 6000, 12_000, 20_000, 40_000),
    "health": {
        "initial": 70,
        "success_reward": 1,
        "rate_limit_penalty": -15,
        "failure_penalty": -25,
        "recovery_per_hour": 5,
        "min_usable": 40,
        "max_score": 100,
    },
    "token_bucket": {"max_tokens": 30, "tokens_per_minute": 8, "initial_tokens": 30},
    "quota": {"low_threshold": 0.15, "critical_threshold": 0.05, "stale_ms": 180_000},
    "weights": {"health": 5, "tokens": 2, "quota": 3, "lru": 0.01},
}
CONSERVATIVE: dict[str, Any] = {
    "strategy": "sticky",
    "max_retries": 8,
    "max_wait_before_error_ms": 240_000,
    "global_quota_threshold": 0.20,
    "rate_limit_dedup_window_ms": 3000,
    "breaker": {
        "failures_to_open": 5,
        "first_probe_ms": 1000,
        "steady_probes": 3,
        "max_probe_ms": 60_000,
    },
    "max_capacity_retries": 8,
    "capacity_backoff_tiers_ms": (8000, 15_000, 30_000, 45_000, 90_000),
    "health": {
        "initial": 80,
        "success_reward": 2,
        "rate_limit_penalty": -5,
        "failure_penalty": -10,
        "recovery_per_hour": 3,
        "min_usable": 50,
        "max_score": 100,
    },
    "token_bucket": {"max_tokens": 80, "tokens_per_minute": 4, "initial_tokens": 80},
    "quota": {"low_threshold": 0.20, "critical_threshold": 0.10, "stale_ms": 300_000},
    "weights": {"health": 3, "tokens": 4, "quota": 2, "lru": 0.05},
}
PRESET_VALUES = [
    pytest.param(preset, field, value, id=f"{preset}-{field}")
    for preset, table in (
        ("default", {field: value for field, _, value in JS_DEFAULTS}),
        ("many-accounts", MANY_ACCOUNTS),
        ("conservative", CONSERVATIVE),
    )
    for field, value in table.items()
]


@pytest.mark.parametrize(("preset", "field", "value"), PRESET_VALUES)
def test_a_preset_loads_by_name_with_the_reference_values(
    preset: str, field: str, value: Any
) -> None:
    assert dumped(load_policy(preset), field) == value


@pytest.mark.parametrize("preset", ["many-accounts", "conservative"])
def test_a_preset_leaves_the_fields_it_does_not_mention_at_their_defaults(preset: str) -> None:
    policy, default = load_policy(preset), Policy()
    assert policy.switch_account_delay_ms == default.switch_account_delay_ms
    assert policy.quota_backoff_tiers_ms == default.quota_backoff_tiers_ms
    assert policy.deadline_ms == default.deadline_ms


def test_an_unknown_preset_fails_naming_it_and_the_known_ones() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy("many_accounts")
    message = str(caught.value)
    assert "preset: unknown preset 'many_accounts'" in message
    assert all(name in message for name in ("default", "many-accounts", "conservative"))


# Invalid values: (id, overrides, field named, reason named) --------------------------------------
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("max-retries-zero", {"max_retries": 0}, "max_retries", "greater than or equal to 1"),
    ("max-retries-21", {"max_retries": 21}, "max_retries", "less than or equal to 20"),
    ("max-retries-not-a-number", {"max_retries": "x"}, "max_retries", "valid integer"),
    (
        "negative-switch-account-delay",
        {"switch_account_delay_ms": -1},
        "switch_account_delay_ms",
        "greater than or equal to 0",
    ),
    (
        "zero-breaker-threshold",
        {"breaker": {"failures_to_open": 0}},
        "breaker.failures_to_open",
        "greater than or equal to 1",
    ),
    ("deadline-under-a-second", {"deadline_ms": 999}, "deadline_ms", "greater than or equal to"),
    (
        "max-wait-over-600000",
        {"max_wait_before_error_ms": 600_001},
        "max_wait_before_error_ms",
        "less than or equal to 600000",
    ),
    (
        "empty-capacity-tiers",
        {"capacity_backoff_tiers_ms": []},
        "capacity_backoff_tiers_ms",
        "at least 1 item",
    ),
    (
        "negative-capacity-tier",
        {"capacity_backoff_tiers_ms": [5000, -1]},
        "capacity_backoff_tiers_ms.1",
        "greater than or equal to 1",
    ),
    (
        "eleven-capacity-tiers",
        {"capacity_backoff_tiers_ms": [1000] * 11},
        "capacity_backoff_tiers_ms",
        "at most 10 items",
    ),
    (
        "empty-quota-tiers",
        {"quota_backoff_tiers_ms": []},
        "quota_backoff_tiers_ms",
        "at least 1 item",
    ),
    ("unknown-field", {"max_retrys": 5}, "max_retrys", "Extra inputs are not permitted"),
    (
        "unknown-nested-field",
        {"health": {"initail": 60}},
        "health.initail",
        "Extra inputs are not permitted",
    ),
    (
        "health-initial-over-100",
        {"health": {"initial": 101}},
        "health.initial",
        "less than or equal to 100",
    ),
    ("unknown-strategy", {"strategy": "random"}, "strategy", "'sticky', 'round-robin' or 'hybrid'"),
    (
        "quota-threshold-of-one",
        {"global_quota_threshold": 1},
        "global_quota_threshold",
        "less than 1",
    ),
    (
        "fallback-depth-6",
        {"max_fallback_depth": 6},
        "max_fallback_depth",
        "less than or equal to 5",
    ),
    (
        "zero-endpoint-budget",
        {"endpoint_budget": {"max_tokens": 0}},
        "endpoint_budget.max_tokens",
        "greater than 0",
    ),
    ("no-endpoint", {"endpoints": []}, "endpoints", "at least 1 item"),
    ("duplicate-endpoint", {"endpoints": ["daily", "daily"]}, "endpoints", "appear once"),
    (
        "fallback-chain-cycle",
        {"fallback_chains": {"a": ["b", "a"]}},
        "fallback_chains.a",
        "'a' appears twice in a -> b -> a (a cycle)",
    ),
    (
        "fallback-chain-duplicate",
        {"fallback_chains": {"a": ["b", "b"]}},
        "fallback_chains.a",
        "'b' appears twice in a -> b -> b",
    ),
    (
        "fallback-chain-to-itself",
        {"fallback_chains": {"a": ["a"]}},
        "fallback_chains.a",
        "'a' appears twice",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [pytest.param(o, f, r, id=name) for name, o, f, r in INVALID],
)
def test_an_invalid_value_fails_at_load_naming_the_field_and_the_reason(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(overrides=overrides)
    message = str(caught.value)
    assert message.startswith("invalid policy: ")
    assert f"{field}: " in message
    assert reason in message


def test_a_field_error_is_reported_as_a_field_and_reason_pair_with_the_value_given() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(overrides={"max_retries": 0})
    assert caught.value.problems == [
        ("max_retries", "Input should be greater than or equal to 1 (got 0)")
    ]


def test_a_fallback_cycle_is_reported_against_the_models_chain() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(overrides={"fallback_chains": {"a": ["b", "a"]}})
    assert caught.value.problems == [
        ("fallback_chains.a", "'a' appears twice in a -> b -> a (a cycle)")
    ]


def test_every_invalid_field_is_reported_at_once() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(overrides={"max_retries": 0, "capacity_backoff_tiers_ms": [], "bogus": 1})
    fields = {field for field, _ in caught.value.problems}
    assert fields == {"max_retries", "capacity_backoff_tiers_ms", "bogus"}


def test_a_policy_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        load_policy(overrides={"max_retries": 0})


def test_a_loaded_policy_cannot_be_changed() -> None:
    policy = load_policy()
    with pytest.raises(ValidationError):
        policy.max_retries = 9  # type: ignore[misc]


# Overrides ----------------------------------------------------------------------------------------
def test_a_nested_override_keeps_the_other_fields_of_the_default_group() -> None:
    health = load_policy(overrides={"health": {"initial": 60}}).health
    assert health.initial == 60
    assert (health.rate_limit_penalty, health.failure_penalty, health.min_usable) == (-10, -20, 50)


def test_a_nested_override_keeps_the_other_fields_of_the_preset_group() -> None:
    policy = load_policy("many-accounts", {"health": {"initial": 90}})
    assert policy.health.initial == 90
    assert (policy.health.rate_limit_penalty, policy.health.min_usable) == (-15, 40)
    assert policy.max_retries == 3


def test_an_override_does_not_change_the_preset_for_later_loads() -> None:
    load_policy("many-accounts", {"health": {"initial": 90}, "max_retries": 7})
    policy = load_policy("many-accounts")
    assert (policy.health.initial, policy.max_retries) == (70, 3)


def test_a_list_override_replaces_the_whole_list() -> None:
    policy = load_policy("conservative", {"capacity_backoff_tiers_ms": [1000, 2000]})
    assert policy.capacity_backoff_tiers_ms == (1000, 2000)


def test_top_level_overrides_win_over_the_preset() -> None:
    policy = load_policy("conservative", {"strategy": "round-robin", "max_retries": 2})
    assert (policy.strategy, policy.max_retries, policy.max_capacity_retries) == (
        "round-robin",
        2,
        8,
    )


# fallback_chain and max_attempts ------------------------------------------------------------------
CHAIN = {"a": ["b", "c", "d"]}


@pytest.mark.parametrize(
    ("overrides", "model", "expected"),
    [
        pytest.param({}, "gemini-3-flash", (), id="disabled-by-default"),
        pytest.param(
            {"fallback_chains": CHAIN, "max_fallback_depth": 3}, "a", (), id="disabled-long-chain"
        ),
        pytest.param(
            {"fallback_enabled": True},
            "gemini-3-flash",
            ("claude-sonnet-4-6",),
            id="enabled-default-map",
        ),
        pytest.param(
            {"fallback_enabled": True},
            "claude-opus-4-6-thinking",
            ("gemini-3.1-pro-high",),
            id="enabled-default-map-back",
        ),
        pytest.param({"fallback_enabled": True}, "unknown-model", (), id="enabled-unmapped-model"),
        pytest.param(
            {"fallback_enabled": True, "fallback_chains": CHAIN}, "a", ("b",), id="depth-1"
        ),
        pytest.param(
            {"fallback_enabled": True, "fallback_chains": CHAIN, "max_fallback_depth": 2},
            "a",
            ("b", "c"),
            id="depth-2",
        ),
        pytest.param(
            {"fallback_enabled": True, "fallback_chains": CHAIN, "max_fallback_depth": 5},
            "a",
            ("b", "c", "d"),
            id="depth-beyond-the-chain",
        ),
        pytest.param(
            {"fallback_enabled": True, "fallback_chains": CHAIN, "max_fallback_depth": 0},
            "a",
            (),
            id="depth-0",
        ),
    ],
)
def test_the_fallback_chain_is_empty_unless_enabled_and_is_cut_at_the_depth_bound(
    overrides: dict[str, Any], model: str, expected: tuple[str, ...]
) -> None:
    assert load_policy(overrides=overrides).fallback_chain(model) == expected


@pytest.mark.parametrize(
    ("max_retries", "accounts", "expected"),
    [
        pytest.param(5, 0, 5, id="no-accounts"),
        pytest.param(5, 1, 5, id="one-account"),
        pytest.param(5, 4, 5, id="four-accounts-equal"),
        pytest.param(5, 5, 6, id="five-accounts"),
        pytest.param(5, 10, 11, id="ten-accounts"),
        pytest.param(1, 0, 1, id="one-retry-no-accounts"),
        pytest.param(8, 3, 8, id="conservative"),
        pytest.param(3, 3, 4, id="many-accounts-3"),
    ],
)
def test_max_attempts_is_the_larger_of_max_retries_and_accounts_plus_one(
    max_retries: int, accounts: int, expected: int
) -> None:
    assert load_policy(overrides={"max_retries": max_retries}).max_attempts(accounts) == expected


def test_a_first_probe_interval_longer_than_the_longest_is_refused_naming_both() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(overrides={"breaker": {"first_probe_ms": 5000, "max_probe_ms": 2000}})
    assert caught.value.problems == [
        ("breaker.first_probe_ms", "5000 is more than breaker.max_probe_ms (2000)")
    ]
