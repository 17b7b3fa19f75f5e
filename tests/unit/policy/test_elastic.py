"""Issue 19: the sizes an elastic job may run at, and when it may grow."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.policy.elastic import ElasticBounds, elastic_bounds, fitting_sizes, grow_check
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
