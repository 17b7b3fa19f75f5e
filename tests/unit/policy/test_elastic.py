"""Issue 19: the sizes an elastic job may run at, when it may grow, and when a resize that
takes too long (``scalingTimeoutInSeconds``) is abandoned."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.policy.elastic import (
    ElasticBounds,
    FallBack,
    TreatAsFault,
    abandon_resize,
    elastic_bounds,
    fitting_sizes,
    grow_check,
)
from trainguard.spec.job import JobSpec

TEMPLATE = {"spec": {"containers": [{"name": "c", "command": ["hyperpodrun"]}]}}


def _spec(
    elastic: dict[str, Any] | None, *, replicas: int = 3, snooze: int | None = None
) -> JobSpec:
    restart = {"evalPeriodSeconds": 60}
    if snooze is not None:
        restart["scaleUpSnoozeTimeInSeconds"] = snooze
    return JobSpec.model_validate(
        {
            "replicaSpecs": [{"name": "pods", "replicas": replicas, "template": TEMPLATE}],
            "runPolicy": {"restartPolicy": restart},
            "elasticPolicy": elastic,
        }
    )


@pytest.mark.parametrize(
    ("elastic", "sizes"),
    [
        ({"minReplicas": 1, "maxReplicas": 3}, (1, 2, 3)),
        ({}, (1, 2, 3)),  # min 1, max = replicas
        ({"minReplicas": 2, "maxReplicas": 8, "replicaIncrementStep": 3}, (2, 5, 8)),
        ({"minReplicas": 2, "maxReplicas": 7, "replicaIncrementStep": 2}, (2, 4, 6)),
        ({"maxReplicas": 8, "replicaDiscreteValues": [8, 2, 4]}, (2, 4, 8)),
    ],
)
def test_allowed_sizes(elastic: dict[str, Any], sizes: tuple[int, ...]) -> None:
    bounds = elastic_bounds(_spec(elastic))
    assert bounds is not None
    assert bounds.sizes == sizes
    assert (bounds.minimum, bounds.target) == (sizes[0], sizes[-1])


def test_a_job_without_elastic_policy_has_no_bounds() -> None:
    assert elastic_bounds(_spec(None)) is None


def test_snooze_comes_from_the_restart_policy() -> None:
    bounds = elastic_bounds(_spec({"minReplicas": 1}, snooze=30))
    assert bounds is not None and bounds.snooze_seconds == 30.0


def test_fitting_sizes_are_largest_first_and_never_below_min() -> None:
    bounds = ElasticBounds((2, 4, 6), 0.0)
    assert fitting_sizes(bounds, at_most=5) == [4, 2]
    assert fitting_sizes(bounds, at_most=1) == []


def test_grow_waits_out_the_snooze_after_the_last_resize() -> None:
    bounds = ElasticBounds((1, 2, 3), 10.0)
    early = grow_check(bounds, current=2, last_resize=100.0, now=104.0)
    assert early.sizes == [] and early.wait_seconds == pytest.approx(6.0)
    due = grow_check(bounds, current=2, last_resize=100.0, now=110.0)
    assert due.sizes == [3] and due.wait_seconds == 0.0
    assert grow_check(bounds, current=1, last_resize=None, now=0.0).sizes == [3, 2]
    assert grow_check(bounds, current=3, last_resize=None, now=0.0).sizes == []


@pytest.mark.parametrize(("timeout", "expected"), [(None, None), (0, None), (45, 45.0)])
def test_the_scaling_timeout_comes_from_the_elastic_policy(
    timeout: int | None, expected: float | None
) -> None:
    bounds = elastic_bounds(_spec({"minReplicas": 1, "scalingTimeoutInSeconds": timeout}))
    assert bounds is not None and bounds.scaling_timeout == expected


TIMED = ElasticBounds((1, 2, 3, 4), 0.0, scaling_timeout=60.0)


def test_a_resize_is_not_abandoned_before_its_timeout_nor_without_one() -> None:
    assert abandon_resize(TIMED, before=1, after=3, usable=1, elapsed=59.9) is None
    untimed = ElasticBounds((1, 2, 3), 0.0)
    assert abandon_resize(untimed, before=1, after=3, usable=1, elapsed=1e9) is None


@pytest.mark.parametrize(
    ("before", "after", "usable", "size"),
    [
        (1, 3, 1, 1),  # the new pods never started: back to the size before
        (1, 4, 3, 3),  # two of three new pods started: the largest size they allow
        (2, 4, 9, 3),  # never the size that timed out, even with pods to spare
    ],
)
def test_a_grow_that_timed_out_falls_back_to_the_largest_usable_size(
    before: int, after: int, usable: int, size: int
) -> None:
    decision = abandon_resize(TIMED, before=before, after=after, usable=usable, elapsed=60.0)
    assert decision == FallBack(size)


def test_a_fallback_respects_discrete_sizes() -> None:
    bounds = ElasticBounds((2, 4, 8), 0.0, scaling_timeout=30.0)
    assert abandon_resize(bounds, before=4, after=8, usable=7, elapsed=31) == FallBack(4)


def test_a_shrink_that_timed_out_is_an_ordinary_fault() -> None:
    assert abandon_resize(TIMED, before=3, after=2, usable=2, elapsed=60) == TreatAsFault()


def test_a_grow_with_no_usable_size_left_is_an_ordinary_fault() -> None:
    bounds = ElasticBounds((2, 3), 0.0, scaling_timeout=10.0)
    assert abandon_resize(bounds, before=2, after=3, usable=1, elapsed=10) == TreatAsFault()
