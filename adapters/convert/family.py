"""Model families and thinking-model detection (seed §1.8), decided from the model name alone."""

from __future__ import annotations

import re
from typing import Literal

Family = Literal["claude", "gemini", "unknown"]

_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")


def model_family(model: str) -> Family:
    """``claude`` if the lowercase name contains "claude", else ``gemini`` if it contains
    "gemini", else ``unknown``."""
    name = model.lower()
    if "claude" in name:
        return "claude"
    if "gemini" in name:
        return "gemini"
    return "unknown"


def is_thinking_model(model: str) -> bool:
    """Claude models whose name contains "thinking"; Gemini models whose name contains
    "thinking" or whose major version (``gemini-<N>``) is 3 or more."""
    name = model.lower()
    family = model_family(name)
    if family == "claude":
        return "thinking" in name
    if family == "gemini":
        if "thinking" in name:
            return True
        match = _GEMINI_MAJOR.search(name)
        return match is not None and int(match.group(1)) >= 3
    return False


def is_gemini_2_5(model: str) -> bool:
    """Gemini 2.5 models have a smaller thinking budget ceiling (seed §5.6)."""
    return "gemini-2.5" in model.lower()
