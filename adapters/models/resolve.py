"""Which upstream model serves the model name a client sent: a pure function of the name, the
available list, the configured aliases and family choices, and whether the request wants
thinking. No I/O, no clock.

The order, first match wins:

1. **alias**: an explicit `[models] aliases` entry (its target is used as configured);
2. **exact**: the name is available upstream;
3. **undated**: the name without a date suffix (`-20250929`, `@20250929`) or `-latest` is
   available;
4. **family** (Claude names, also a bare `opus`): a name containing `opus` / `sonnet` /
   `haiku` goes to the configured `[models] opus` / `sonnet` / `haiku` model if set, else to
   the best available model of that family. There is no haiku upstream: haiku goes to the
   best available Claude haiku if one appears, else to the best available
   `gemini-<version>-flash*` model;
5. **variant** (Gemini names): the name is a prefix of available variants
   (`gemini-3.1-pro` -> `gemini-3.1-pro-high`): the highest effort wins (`-high`, then
   `-medium`, then `-low`, then any other suffix);
6. anything else is unresolvable (None).

"Best" is the highest version parsed from the name (`claude-opus-4-6` = (4, 6) beats (4, 5);
`gemini-3.5-flash` = (3, 5) beats (3, 1)). When the client wants thinking (its body enables
it, or its name contains `thinking`) only thinking models compete if there are any; otherwise,
at equal versions, the plain model beats its `-thinking` twin. Remaining ties: the shorter
name, then the alphabetically first.

Finally, when the request wants thinking and the chosen model is a Claude model without
thinking whose `-thinking` variant is available, the variant is chosen instead. Whether the
result can think (`thinking_available`) is what the request converter decides from the name
(`adapters.convert.family.is_thinking_model`: Claude `*thinking*`, Gemini 3 and later).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from adapters.convert.family import is_thinking_model, model_family

#: The fail-open list (model id, display name): served when no live list could be fetched.
BUILTIN_MODELS: tuple[tuple[str, str], ...] = (
    ("claude-opus-4-6-thinking", "Claude Opus 4.6 (Thinking)"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-sonnet-4-6-thinking", "Claude Sonnet 4.6 (Thinking)"),
    ("gemini-3-flash", "Gemini 3 Flash"),
    ("gemini-3.1-pro-low", "Gemini 3.1 Pro (Low)"),
    ("gemini-3.1-pro-high", "Gemini 3.1 Pro (High)"),
    ("gemini-3.5-flash-low", "Gemini 3.5 Flash (Low)"),
)
BUILTIN_NAMES: tuple[str, ...] = tuple(name for name, _ in BUILTIN_MODELS)

Via = Literal["alias", "exact", "undated", "family", "variant"]
Tier = Literal["opus", "sonnet", "haiku"]
TIERS: tuple[Tier, ...] = ("opus", "sonnet", "haiku")

_SUFFIXES = (re.compile(r"[-@]\d{8}$"), re.compile(r"-latest$"))
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_GEMINI_FLASH = re.compile(r"^gemini-\d+(?:\.\d+)*-flash")
_EFFORT = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Resolution:
    """`requested` is served by upstream `model`; `via` says which rule chose it."""

    requested: str
    model: str
    via: Via
    thinking_available: bool


def undated(name: str) -> str:
    """The name without date suffixes (`-20250929`, `@20250929`) and `-latest`."""
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SUFFIXES:
            shorter = suffix.sub("", name)
            if shorter != name:
                name, stripped = shorter, True
    return name


def version(name: str) -> tuple[int, ...]:
    """The version numbers in a model name: `claude-opus-4-6-thinking` -> (4, 6),
    `gemini-3.1-pro-high` -> (3, 1), `claude-3-5-sonnet-20241022` -> (3, 5)."""
    numbers: list[int] = []
    for match in _NUMBER.findall(undated(name)):
        numbers.extend(int(part) for part in match.split("."))
    return tuple(numbers)


def claude_tier(name: str) -> Tier | None:
    lower = name.lower()
    return next((tier for tier in TIERS if tier in lower), None)


def best(candidates: Iterable[str], *, thinking: bool = False) -> str | None:
    """The best model among `candidates` (see the module's rules), or None if there are none."""
    pool = list(dict.fromkeys(candidates))
    if thinking:
        pool = [m for m in pool if is_thinking_model(m)] or pool
    if not pool:
        return None
    ordered = sorted(pool, key=lambda m: (len(m), m))
    ordered.sort(key=lambda m: (version(m), "thinking" not in m.lower()), reverse=True)
    return ordered[0]


def _family(
    tier: Tier, available: Collection[str], families: Mapping[str, str | None], thinking: bool
) -> str | None:
    configured = families.get(tier)
    if configured:
        return configured
    same = [m for m in available if model_family(m) == "claude" and claude_tier(m) == tier]
    chosen = best(same, thinking=thinking)
    if chosen is None and tier == "haiku":
        chosen = best((m for m in available if _GEMINI_FLASH.match(m)), thinking=thinking)
    return chosen


def _variant(name: str, available: Collection[str]) -> str | None:
    prefix = name + "-"
    found = [m for m in available if m.startswith(prefix)]
    if not found:
        return None

    def effort(model: str) -> int:
        return _EFFORT.get(model[len(prefix) :].split("-", maxsplit=1)[0], len(_EFFORT))

    return min(found, key=lambda m: (effort(m), len(m), m))


def _with_thinking(model: str, available: Collection[str], thinking: bool) -> str:
    if thinking and model_family(model) == "claude" and not is_thinking_model(model):
        variant = f"{model}-thinking"
        if variant in available:
            return variant
    return model


def resolve_model(
    name: str,
    available: Collection[str],
    *,
    aliases: Mapping[str, str] | None = None,
    families: Mapping[str, str | None] | None = None,
    thinking: bool = False,
) -> Resolution | None:
    """The upstream model for client model `name`, or None when nothing fits.

    `available`: the upstream's model ids; `aliases`: `[models] aliases`; `families`: the
    configured `opus` / `sonnet` / `haiku` targets (None or missing: the best available);
    `thinking`: the request enables thinking (`thinking.type` `enabled` or `adaptive`)."""
    found = _choose(name, available, aliases or {}, families or {}, thinking)
    if found is None:
        return None
    model, via = found
    model = _with_thinking(model, available, thinking)
    return Resolution(name, model, via, is_thinking_model(model))


def _choose(
    name: str,
    available: Collection[str],
    aliases: Mapping[str, str],
    families: Mapping[str, str | None],
    thinking: bool,
) -> tuple[str, Via] | None:
    if name in aliases:
        return aliases[name], "alias"
    if name in available:
        return name, "exact"
    lower = undated(name.strip().lower())
    if not lower:
        return None
    if lower in available:
        return lower, "undated" if lower != name else "exact"
    if model_family(lower) == "gemini":
        chosen = _variant(lower, available)
        return None if chosen is None else (chosen, "variant")
    tier = claude_tier(lower)
    if tier is not None:
        chosen = _family(tier, available, families, thinking or "thinking" in lower)
        return None if chosen is None else (chosen, "family")
    return None
