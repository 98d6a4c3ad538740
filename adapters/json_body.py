"""A client's JSON body, decoded within limits: every way it can be wrong is a `RequestError`
(400 `invalid_request_error`) that says what, never a 500.

- **Nesting**: at most `MAX_DEPTH` containers deep. Real Claude Code requests are at most 12
  levels deep (`tests/fixtures/claude_code/`), and MCP tool schemas add a few levels per nested
  object; 128 leaves room for those while staying far from Python's recursion limit in the
  decoder and the request conversion (tested right at the limit).
- **Numbers**: `NaN`, `Infinity` and numbers too large for a double (`1e999`) are refused.
  Python's decoder accepts them, but they are not JSON: forwarded, they would make the upstream
  request invalid JSON.
- **Shape**: the body must be a JSON object.
- Errors quote at most a few dozen characters of the body (`adapters.convert.anthropic.quote`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from adapters.convert.anthropic import RequestError, quote

MAX_DEPTH = 128
"""The deepest nesting of objects and arrays accepted (the body itself is level 1)."""


class _NotFinite(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _constant(text: str) -> Any:
    raise _NotFinite(text)  # NaN, Infinity, -Infinity


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` containers deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The request body as a dict, or a `RequestError` saying why it is not one."""
    too_deep = RequestError(f"the request body is nested more than {max_depth} levels deep")
    try:
        data = json.loads(raw, parse_constant=_constant, parse_float=_finite)
    except _NotFinite as err:
        raise RequestError(
            f"the request body holds the number {quote(err.text)}: JSON numbers must be finite "
            "(no NaN or Infinity) and fit a double"
        ) from None
    except RecursionError:
        raise too_deep from None
    except ValueError as err:  # also UnicodeDecodeError: not UTF-8
        raise RequestError(f"the request body is not valid JSON ({quote(err, 200)})") from None
    if not isinstance(data, dict):
        raise RequestError("request body must be a JSON object")
    if _deeper_than(data, max_depth):
        raise too_deep
    return data
