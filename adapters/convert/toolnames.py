"""Tool names the upstream accepts (``[A-Za-z0-9_-]``, at most 64 characters) and the reversible
map back to the names the client chose, so a ``functionCall`` for ``mcp_server_tool`` reaches the
client as ``tool_use`` named ``mcp.server/tool``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MAX_TOOL_NAME_LENGTH = 64
_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_tool_name(name: str) -> str:
    """Replace every character outside ``[A-Za-z0-9_-]`` with ``_`` and cut to 64 characters
    (seed §5.5); an empty name becomes ``tool``."""
    cleaned = _DISALLOWED.sub("_", name)[:MAX_TOOL_NAME_LENGTH]
    return cleaned or "tool"


class ToolNameMap:
    """A one-to-one map between client tool names and upstream tool names.

    ``add`` sanitises a client name; when two client names sanitise to the same string (``a.b``
    and ``a/b``) the later one gets a ``_2``, ``_3``, … suffix so the map stays reversible.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._upstream: dict[str, str] = {}
        self._client: dict[str, str] = {}
        self.answer_tool: str | None = None
        """An upstream-only function whose call *is* the answer (structured outputs on models
        that take no response schema); its arguments reach the client as JSON text."""
        for name in names:
            self.add(name)

    def _free(self, base: str) -> str:
        candidate, counter = base, 1
        while candidate in self._client:
            counter += 1
            suffix = f"_{counter}"
            candidate = base[: MAX_TOOL_NAME_LENGTH - len(suffix)] + suffix
        return candidate

    def add(self, client_name: str) -> str:
        """Register ``client_name`` (idempotent) and return its upstream name."""
        known = self._upstream.get(client_name)
        if known is not None:
            return known
        candidate = self._free(sanitize_tool_name(client_name))
        self._upstream[client_name] = candidate
        self._client[candidate] = client_name
        return candidate

    def reserve_answer_tool(self, name: str) -> str:
        """A name for the answer tool that no client tool has; register it as such."""
        candidate = self._free(sanitize_tool_name(name))
        self._client[candidate] = candidate
        self.answer_tool = candidate
        return candidate

    def to_upstream(self, client_name: str) -> str:
        """The upstream name of a registered client name (unregistered: sanitised, unchanged
        map)."""
        known = self._upstream.get(client_name)
        return known if known is not None else sanitize_tool_name(client_name)

    def to_client(self, upstream_name: str) -> str:
        """The client's name for an upstream name; unknown names come back unchanged."""
        return self._client.get(upstream_name, upstream_name)

    def items(self) -> Iterator[tuple[str, str]]:
        """(client name, upstream name) pairs in registration order."""
        return iter(self._upstream.items())

    def __len__(self) -> int:
        return len(self._upstream)

    def __contains__(self, client_name: object) -> bool:
        return client_name in self._upstream

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToolNameMap) and self._upstream == other._upstream

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ToolNameMap({self._upstream!r})"
