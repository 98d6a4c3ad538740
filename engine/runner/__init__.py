"""The one async driver of the engine (the only part of `engine` allowed to use asyncio)."""

from engine.runner.clock import SystemClock, VirtualClock, VirtualDeadlock
from engine.runner.driver import Runner
from engine.runner.ports import ClientStream, Clock, TraceSink, Transport

__all__ = [
    "ClientStream",
    "Clock",
    "Runner",
    "SystemClock",
    "TraceSink",
    "Transport",
    "VirtualClock",
    "VirtualDeadlock",
]
