"""Hypothesis settings profiles: dev (the default), ci and thorough.

No profile has a deadline: a statistical example draws a large sample, and a
deadline would turn a slow machine into a false alarm. No profile keeps a
database either, so every decision in a run is one of the examples the
statistical budget counted; a failure is replayed with --seed instead.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

PROFILES = ("dev", "ci", "thorough")
DEFAULT_PROFILE = "dev"
CI_SEED = 0  # the fixed base seed of the ci profile

_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=False,
    # The explain phase lists source lines only failing examples ran; for a
    # conformance failure the clause message and the falsifying draws say more.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

settings.register_profile("dev", max_examples=20, **_COMMON)
settings.register_profile("ci", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=200, **_COMMON)
