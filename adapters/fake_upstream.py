"""The fake upstream (Cloud Code API + Google OAuth) used by tests, benchmarks and the demo.

The implementation lives in the `adapters.fake` package; this module is its stable import path:

    async with FakeUpstream() as fake:
        fake.add_account("a")
        fake.script("a", [preset("quota_429"), stream("hi")])
        ...  # point the proxy at fake.urls["daily"], fake.urls["prod"], fake.token_url
"""

from adapters.fake import *  # noqa: F403 - this module is the package's stable import path
from adapters.fake import __all__ as __all__  # noqa: PLC0414 - an explicit re-export for mypy
