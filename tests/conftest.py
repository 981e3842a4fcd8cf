"""Shared test setup: hypothesis profiles and a count of property-test examples."""

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

# CI: derandomized (the same examples every run) and no example database, so a
# run never depends on what an earlier run found.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

EXAMPLES: Counter = Counter()


@pytest.fixture
def count_example():
    """Call once per hypothesis example; the total is printed at the end of the run."""

    def count(kind: str) -> None:
        EXAMPLES[kind] += 1

    return count


def pytest_terminal_summary(terminalreporter):
    if EXAMPLES:
        parts = ", ".join(f"{kind}: {n}" for kind, n in sorted(EXAMPLES.items()))
        terminalreporter.write_line(
            f"property-test examples run: {sum(EXAMPLES.values())} ({parts})"
        )
