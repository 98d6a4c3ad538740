"""The upstream `sessionId` of a request: one per conversation (and account), so that two
conversations on one account do not evict each other's implicit prompt cache.

A conversation is named by Claude Code's `metadata.user_id` (a JSON string holding
`session_id`) when the client sends one, else by a hash of the conversation's first user message
and the model family. The name is combined with the account (a hash of both), so the id stays
per account and says nothing about the prompt or the account.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from adapters.convert.anthropic import MessagesRequest
from adapters.convert.family import model_family


def conversation_key(request: MessagesRequest, upstream_model: str) -> str:
    """What names the request's conversation (not sent anywhere as is)."""
    client_session = _client_session(request.metadata)
    if client_session is not None:
        return f"client:{client_session}"
    first = next((m for m in request.messages if m.role == "user"), None)
    content: Any = None
    if first is not None:
        content = (
            first.content
            if isinstance(first.content, str)
            else [block.model_dump(mode="json", exclude_none=True) for block in first.content]
        )
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"first:{model_family(upstream_model)}:{digest}"


def session_id(account: str, key: str) -> str:
    """The upstream `sessionId` for conversation `key` on `account` (stable across turns and
    restarts; a UUID-shaped hash)."""
    digest = hashlib.sha256(f"{account}\0{key}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _client_session(metadata: dict[str, Any] | None) -> str | None:
    """Claude Code's `metadata.user_id` is a JSON string: `{"device_id", "account_uuid",
    "session_id"}`; anything else (absent, plain text, no session) names no conversation."""
    if not metadata:
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str):
        return None
    try:
        parsed = json.loads(user_id)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    session = parsed.get("session_id")
    if isinstance(session, str) and session:
        return session
    return None
