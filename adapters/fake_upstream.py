"""The fake upstream (Cloud Code API + Google OAuth) used by tests, benchmarks and the demo.

The implementation lives in the `adapters.fake` package; this module is its stable import path:

    async with FakeUpstream() as fake:
        fake.add_account("a")
        fake.script("a", [preset("quota_429"), stream("hi")])
        ...  # point the proxy at fake.urls["daily"], fake.urls["prod"], fake.token_url
"""

from adapters.fake.answers import (
    DEFAULT_TEXT,
    DEFAULT_USAGE,
    Answer,
    Part,
    Usage,
    drop_after,
    drop_before,
    empty,
    error,
    error_in_stream,
    final_without_newline,
    function_call,
    hang,
    image,
    make_signature,
    normal,
    preset,
    sse,
    stream,
    text,
    thinking,
)
from adapters.fake.command import add_arguments, main, run_fake_upstream, run_from_args
from adapters.fake.presets import PRESET_NAMES, PRESETS, VERSION_GATE_TEXT, Preset, google_error
from adapters.fake.server import FakeUpstream, loopback_host
from adapters.fake.specs import from_spec
from adapters.fake.state import Account, Call, RequestRecord

__all__ = [
    "DEFAULT_TEXT",
    "DEFAULT_USAGE",
    "PRESETS",
    "PRESET_NAMES",
    "VERSION_GATE_TEXT",
    "Account",
    "Answer",
    "Call",
    "FakeUpstream",
    "Part",
    "Preset",
    "RequestRecord",
    "Usage",
    "add_arguments",
    "drop_after",
    "drop_before",
    "empty",
    "error",
    "error_in_stream",
    "final_without_newline",
    "from_spec",
    "function_call",
    "google_error",
    "hang",
    "image",
    "loopback_host",
    "main",
    "make_signature",
    "normal",
    "preset",
    "run_fake_upstream",
    "run_from_args",
    "sse",
    "stream",
    "text",
    "thinking",
]
