"""Raw HTTP/1.1 over a socket, for requests no well-behaved client sends: a forged `Host`,
non-UTF-8 header bytes, malformed framing, a body cut short."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from adapters.serve import Served


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes = b"",
    *,
    host: str | bytes | None = "127.0.0.1",
) -> bytes:
    """One request as bytes; `host=None` leaves the `Host` header out."""
    lines = [f"{method} {path} HTTP/1.1".encode()]
    if host is not None:
        lines.append(b"Host: " + (host if isinstance(host, bytes) else host.encode()))
    for name, value in (headers or {}).items():
        lines.append(
            name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
        )
    if body or method == "POST":
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def send(served: Served, data: bytes, timeout: float = 10) -> Answer:
    """Send `data` as is and read the answer until the proxy closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port(served))
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return Answer(int(status_line.split()[1]), headers, body)


async def request(
    served: Served,
    method: str,
    path: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes | Any = b"",
    *,
    host: str | bytes | None = "127.0.0.1",
) -> Answer:
    """One request with exactly these headers (`Host` included); a non-bytes body is sent as
    JSON (the content type is still only what `headers` says)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await send(served, request_bytes(method, path, headers, raw, host=host))


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out
