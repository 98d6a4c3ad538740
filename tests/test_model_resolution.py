"""Client model names -> upstream models (`adapters.models.resolve`), table-driven."""

from __future__ import annotations

import pytest

from adapters.models.resolve import (
    BUILTIN_NAMES,
    best,
    resolve_model,
    undated,
    version,
)

#: The upstream's list of seed-behaviour §4.9 (the built-in list).
LISTED = BUILTIN_NAMES
#: A later list: two opus versions (one without thinking), an older sonnet, more flash models.
LATER = (
    "claude-opus-4-5",
    "claude-opus-4-5-thinking",
    "claude-opus-4-6-thinking",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-sonnet-4-6-thinking",
    "gemini-3-flash",
    "gemini-3-flash-agent",
    "gemini-3.1-flash-lite",
    "gemini-3.1-pro-low",
    "gemini-3.1-pro-high",
    "gemini-3.5-flash-low",
    "gemini-2.5-pro",
)

# (client name, thinking wanted, upstream model, rule) over LISTED
TABLE = [
    # Claude Code's names
    ("claude-opus-4-8", False, "claude-opus-4-6-thinking", "family"),
    ("claude-opus-4-8", True, "claude-opus-4-6-thinking", "family"),
    ("claude-opus-5-5", True, "claude-opus-4-6-thinking", "family"),
    ("claude-sonnet-4-5", False, "claude-sonnet-4-6", "family"),
    ("claude-sonnet-4-5", True, "claude-sonnet-4-6-thinking", "family"),
    ("claude-sonnet-4-5-20250929", False, "claude-sonnet-4-6", "family"),
    ("claude-sonnet-4-5-20250929", True, "claude-sonnet-4-6-thinking", "family"),
    ("claude-haiku-4-5-20251001", False, "gemini-3.5-flash-low", "family"),
    ("claude-haiku-4-5", False, "gemini-3.5-flash-low", "family"),
    ("claude-opus-4-5-thinking", False, "claude-opus-4-6-thinking", "family"),
    ("claude-sonnet-4-5-thinking", False, "claude-sonnet-4-6-thinking", "family"),
    # older Anthropic ids
    ("claude-3-5-sonnet-20241022", False, "claude-sonnet-4-6", "family"),
    ("claude-3-5-sonnet-latest", False, "claude-sonnet-4-6", "family"),
    ("claude-3-opus-20240229", False, "claude-opus-4-6-thinking", "family"),
    ("claude-3-5-haiku-20241022", False, "gemini-3.5-flash-low", "family"),
    # names the upstream lists
    ("claude-sonnet-4-6", False, "claude-sonnet-4-6", "exact"),
    ("claude-sonnet-4-6", True, "claude-sonnet-4-6-thinking", "exact"),
    ("claude-sonnet-4-6-thinking", False, "claude-sonnet-4-6-thinking", "exact"),
    ("claude-opus-4-6-thinking", False, "claude-opus-4-6-thinking", "exact"),
    ("gemini-3-flash", False, "gemini-3-flash", "exact"),
    ("gemini-3-flash", True, "gemini-3-flash", "exact"),
    # dated or -latest forms of listed names
    ("claude-sonnet-4-6-20260101", False, "claude-sonnet-4-6", "undated"),
    ("claude-sonnet-4-6@20260101", False, "claude-sonnet-4-6", "undated"),
    ("claude-sonnet-4-6-latest", True, "claude-sonnet-4-6-thinking", "undated"),
    ("Claude-Sonnet-4-6", False, "claude-sonnet-4-6", "undated"),
    # Gemini names: exact, else the most capable variant of the same family and version
    ("gemini-3.1-pro", False, "gemini-3.1-pro-high", "variant"),
    ("gemini-3.1-pro", True, "gemini-3.1-pro-high", "variant"),
    ("gemini-3.5-flash", False, "gemini-3.5-flash-low", "variant"),
    ("gemini-3.1-pro-high", False, "gemini-3.1-pro-high", "exact"),
    # a bare family name
    ("opus", False, "claude-opus-4-6-thinking", "family"),
    ("sonnet", False, "claude-sonnet-4-6", "family"),
]
UNRESOLVABLE = [
    "gpt-4o",
    "",
    "claude-instant-1.2",
    "gemini-2.0-flash",
    "gemini-3-pro",
    "gemini-3.1-pro-ultra",
    "llama-3-70b",
]


@pytest.mark.parametrize(("name", "thinking", "model", "via"), TABLE)
def test_each_client_name_resolves_to_the_upstream_model_its_rule_picks(
    name: str, thinking: bool, model: str, via: str
) -> None:
    found = resolve_model(name, LISTED, thinking=thinking)
    assert found is not None
    assert (found.model, found.via, found.requested) == (model, via, name)


@pytest.mark.parametrize("name", UNRESOLVABLE)
def test_names_of_no_known_family_resolve_to_nothing(name: str) -> None:
    assert resolve_model(name, LISTED) is None
    assert resolve_model(name, LISTED, thinking=True) is None


# (client name, thinking, model) over LATER: versions, thinking preference, ties
LATER_TABLE = [
    ("claude-opus-4-8", False, "claude-opus-4-6-thinking"),  # 4-6 beats 4-5 even without thinking
    ("claude-opus-4-5", False, "claude-opus-4-5"),  # exact wins over the family
    ("claude-opus-4-5", True, "claude-opus-4-5-thinking"),  # ... and keeps its thinking variant
    ("claude-sonnet-4-7", False, "claude-sonnet-4-6"),  # plain twin beats -thinking at a tie
    ("claude-sonnet-4-7", True, "claude-sonnet-4-6-thinking"),
    ("claude-haiku-4-5", False, "gemini-3.5-flash-low"),  # 3.5 beats 3.1 and 3
    ("gemini-3-flash", False, "gemini-3-flash"),
    ("gemini-3.1-flash", False, "gemini-3.1-flash-lite"),
    ("gemini-2.5-pro", False, "gemini-2.5-pro"),
]


@pytest.mark.parametrize(("name", "thinking", "model"), LATER_TABLE)
def test_the_best_model_of_a_family_is_the_highest_version_with_documented_ties(
    name: str, thinking: bool, model: str
) -> None:
    found = resolve_model(name, LATER, thinking=thinking)
    assert found is not None and found.model == model


def test_an_explicit_alias_wins_over_an_exact_name_and_every_family_rule() -> None:
    aliases = {"claude-sonnet-4-6": "gemini-3-flash", "claude-opus-4-8": "claude-sonnet-4-6"}
    exact = resolve_model("claude-sonnet-4-6", LISTED, aliases=aliases)
    family = resolve_model("claude-opus-4-8", LISTED, aliases=aliases)
    assert exact is not None and (exact.model, exact.via) == ("gemini-3-flash", "alias")
    assert family is not None and (family.model, family.via) == ("claude-sonnet-4-6", "alias")


def test_an_alias_target_is_used_as_configured_even_when_the_upstream_does_not_list_it() -> None:
    found = resolve_model("fast", LISTED, aliases={"fast": "gemini-9-flash"})
    assert found is not None and (found.model, found.via) == ("gemini-9-flash", "alias")


def test_a_thinking_request_through_an_alias_gets_the_targets_thinking_variant() -> None:
    found = resolve_model("mine", LISTED, aliases={"mine": "claude-sonnet-4-6"}, thinking=True)
    assert found is not None and found.model == "claude-sonnet-4-6-thinking"


@pytest.mark.parametrize(
    ("tier", "name"),
    [
        ("opus", "claude-opus-4-8"),
        ("sonnet", "claude-sonnet-4-5-20250929"),
        ("haiku", "claude-haiku-4-5-20251001"),
    ],
)
def test_a_configured_family_target_replaces_the_best_available_model(tier: str, name: str) -> None:
    found = resolve_model(name, LISTED, families={tier: "gemini-3.1-pro-low"})
    assert found is not None and (found.model, found.via) == ("gemini-3.1-pro-low", "family")


def test_a_family_setting_does_not_override_a_listed_name() -> None:
    found = resolve_model("claude-sonnet-4-6", LISTED, families={"sonnet": "gemini-3-flash"})
    assert found is not None and found.model == "claude-sonnet-4-6"


def test_a_thinking_request_for_a_model_without_a_thinking_variant_reports_none_available() -> None:
    found = resolve_model("claude-sonnet-4-9", ["claude-sonnet-4-6"], thinking=True)
    assert found is not None
    assert (found.model, found.thinking_available) == ("claude-sonnet-4-6", False)


def test_a_thinking_request_prefers_an_older_thinking_model_to_a_newer_plain_one() -> None:
    found = resolve_model(
        "claude-opus-4-8", ["claude-opus-4-6", "claude-opus-4-5-thinking"], thinking=True
    )
    assert found is not None
    assert (found.model, found.thinking_available) == ("claude-opus-4-5-thinking", True)


def test_gemini_3_and_later_think_natively_and_older_gemini_do_not() -> None:
    flash = resolve_model("gemini-3-flash", LISTED, thinking=True)
    old = resolve_model("gemini-2.0-flash", ["gemini-2.0-flash"], thinking=True)
    assert flash is not None and flash.thinking_available
    assert old is not None and not old.thinking_available


def test_a_family_with_no_available_model_is_unresolvable() -> None:
    assert resolve_model("claude-opus-4-8", ["claude-sonnet-4-6", "gemini-3-flash"]) is None
    assert resolve_model("claude-haiku-4-5", ["claude-sonnet-4-6"]) is None


def test_a_listed_claude_haiku_would_serve_haiku_names_before_any_gemini_flash() -> None:
    found = resolve_model("claude-haiku-4-5-20251001", ["claude-haiku-4-6", "gemini-3-flash"])
    assert found is not None and found.model == "claude-haiku-4-6"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-20241022-latest", "claude-3-5-sonnet"),
        ("gemini-3.1-pro-high", "gemini-3.1-pro-high"),
    ],
)
def test_date_suffixes_and_latest_are_stripped(name: str, expected: str) -> None:
    assert undated(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-opus-4-6-thinking", (4, 6)),
        ("claude-3-5-sonnet-20241022", (3, 5)),
        ("gemini-3.1-pro-high", (3, 1)),
        ("gemini-3-flash", (3,)),
        ("opus", ()),
    ],
)
def test_versions_are_read_from_the_name(name: str, expected: tuple[int, ...]) -> None:
    assert version(name) == expected


def test_best_breaks_ties_by_the_plain_model_then_the_shorter_name_then_the_alphabet() -> None:
    assert best(["claude-opus-4-6-thinking", "claude-opus-4-6"]) == "claude-opus-4-6"
    assert best(["gemini-3-flash-agent", "gemini-3-flash"]) == "gemini-3-flash"
    assert best(["gemini-3-flash-b", "gemini-3-flash-a"]) == "gemini-3-flash-a"
    assert best([]) is None
