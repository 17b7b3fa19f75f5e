"""The --fault grammar."""

from __future__ import annotations

import pytest

from trainguard.errors import UsageError
from trainguard.spec.faults import FaultSpec, parse_fault


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kill-worker", FaultSpec("kill-worker")),
        ("kill-worker:rank=1,after=10", FaultSpec("kill-worker", rank=1, after=10.0)),
        ("hang-worker:rank=3", FaultSpec("hang-worker", rank=3)),
        ("kill-agent:after=2.5", FaultSpec("kill-agent", after=2.5)),
        ("kill-worker:rank=1,at-step=40", FaultSpec("kill-worker", rank=1, at_step=40)),
        (
            "hang-worker:at-step=5,after=1",
            FaultSpec("hang-worker", after=1.0, at_step=5),
        ),
        (
            "node-unhealthy:node=node-1,after=10",
            FaultSpec("node-unhealthy", node="node-1", after=10.0),
        ),
        (
            "node-unhealthy:status=UnschedulablePendingReplacement",
            FaultSpec("node-unhealthy", status="UnschedulablePendingReplacement"),
        ),
    ],
)
def test_valid_specs(text: str, expected: FaultSpec) -> None:
    assert parse_fault(text) == expected
    assert parse_fault(parse_fault(text).render()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode", "kind must be one of"),
        ("kill-worker:rank", "is not key=value"),
        ("kill-worker:color=red", "is not key=value"),
        ("kill-worker:rank=one", "rank must be an integer"),
        ("kill-worker:after=-1", "after must be finite and not negative"),
        ("kill-worker:after=inf", "after must be finite"),
        ("kill-worker:after=nan", "after must be finite"),
        ("kill-worker:at-step=0", "at-step must be finite and at least 1"),
        ("kill-worker:at-step=1.5", "at-step must be an integer"),
        ("node-unhealthy:status=Broken", "status must be one of"),
    ],
)
def test_invalid_specs(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_fault(text)
