"""Clocks: the system clock, and a virtual clock on which sleeping costs no real time.

`VirtualClock.run(main)` runs a coroutine on its own asyncio loop whose `time()` is virtual and
whose selector, whenever no callback is ready, jumps virtual time straight to the next timer.
Every asyncio primitive (`sleep`, `wait_for`, timeouts) therefore runs on virtual time, and
several concurrent requests share it deterministically. Real sockets do not mix with it: use it
with in-memory transports (tests, replay), and `SystemClock` with real ones.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class VirtualDeadlock(RuntimeError):
    """Every task waits, no timer is armed, and no real I/O can wake anything."""


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            raise VirtualDeadlock("every task is waiting and no timer is armed")
        if timeout > 0:
            self._clock.advance(timeout)
        return []


class VirtualClock:
    """Virtual monotonic time starting at `start`; `wall()` follows it from `wall_start`."""

    def __init__(self, start: float = 0.0, wall_start: float = 1_767_000_000.0) -> None:
        self._start = start
        self._now = start
        self._wall_start = wall_start

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_start + (self._now - self._start)

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run `main` to completion on a fresh loop driven by this clock."""
        loop = asyncio.SelectorEventLoop(_JumpingSelector(self))
        loop.time = self.now  # type: ignore[method-assign]
        try:
            return loop.run_until_complete(main)
        finally:
            loop.close()
