"""Hypothesis profiles: `ci` (the default, used by `make test`) generates the 10,000+ cases per
run the engine's invariants are checked on; `dev` is a quick pass (HYPOTHESIS_PROFILE=dev)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
