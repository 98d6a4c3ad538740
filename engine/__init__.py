"""interlock's engine: every client request an explicit, provably terminating state machine.

Sans-IO: events in, effects out, time passed in. Only `engine.runner` awaits anything.
"""

from engine.effects import Outcome
from engine.failures import Failure, FailureKind, ResetHint, UpstreamFacts, classify
from engine.machine import Engine, UnexpectedEvent
from engine.policy import PRESETS, Policy, PolicyError, load_policy
from engine.pool import AccountPool
from engine.request import Request
from engine.store import AccountRecord, InMemoryStore, StateStore

__all__ = [
    "PRESETS",
    "AccountPool",
    "AccountRecord",
    "Engine",
    "Failure",
    "FailureKind",
    "InMemoryStore",
    "Outcome",
    "Policy",
    "PolicyError",
    "Request",
    "ResetHint",
    "StateStore",
    "UnexpectedEvent",
    "UpstreamFacts",
    "classify",
    "load_policy",
]
