"""Issue 19: ``spec.elasticPolicy`` is checked with errors that name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES
from trainguard.errors import SpecError
from trainguard.spec import load_jobs

BASE: dict[str, Any] = yaml.safe_load((EXAMPLES / "full-run-policy.yaml").read_text())
"""One replica spec of 4 pods, elasticPolicy min 2, max 6, step 2."""


def _load(elastic: dict[str, Any], *, replicas: int = 4) -> None:
    doc = copy.deepcopy(BASE)
    doc["spec"]["elasticPolicy"] = elastic
    doc["spec"]["replicaSpecs"][0]["replicas"] = replicas
    load_jobs(yaml.safe_dump(doc), source="job.yaml")


@pytest.mark.parametrize(
    ("elastic", "replicas", "path", "message"),
    [
        ({"minReplicas": 5, "maxReplicas": 6}, 4, "elasticPolicy.minReplicas", "replicas (4)"),
        ({"minReplicas": 1, "maxReplicas": 3}, 4, "elasticPolicy.maxReplicas", "at least"),
        (
            {"minReplicas": 2, "maxReplicas": 6, "replicaDiscreteValues": [2, 8]},
            4,
            "replicaDiscreteValues[1]",
            "within minReplicas..maxReplicas (2..6), got 8",
        ),
        (
            {"replicaDiscreteValues": [2, 2, 4]},
            4,
            "elasticPolicy.replicaDiscreteValues",
            "must not repeat",
        ),
        ({"replicaIncrementStep": 0}, 4, "elasticPolicy.replicaIncrementStep", "at least 1"),
        ({"minReplicas": 0}, 4, "elasticPolicy.minReplicas", "at least 1"),
    ],
)
def test_bad_elastic_policies_name_the_field(
    elastic: dict[str, Any], replicas: int, path: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        _load(elastic, replicas=replicas)
    text = str(caught.value)
    assert path in text and message in text, text


def test_an_elastic_job_has_one_replica_spec() -> None:
    doc = copy.deepcopy(BASE)
    second = copy.deepcopy(doc["spec"]["replicaSpecs"][0])
    second["name"] = "others"
    doc["spec"]["replicaSpecs"].append(second)
    with pytest.raises(SpecError, match=r"spec\.replicaSpecs: an elastic job has exactly one"):
        load_jobs(yaml.safe_dump(doc), source="job.yaml")


def test_a_sound_policy_loads() -> None:
    _load({"minReplicas": 1, "maxReplicas": 4, "replicaDiscreteValues": [1, 2, 4]}, replicas=2)


def _warnings(elastic: dict[str, Any]) -> list[str]:
    doc = copy.deepcopy(BASE)
    doc["spec"]["elasticPolicy"] = elastic
    (loaded,) = load_jobs(yaml.safe_dump(doc), source="job.yaml")
    return [f"{w.path}: {w.message}" for w in loaded.warnings]


def test_a_scaling_timeout_is_enforced_so_it_draws_no_warning() -> None:
    texts = _warnings({"minReplicas": 2, "maxReplicas": 4, "scalingTimeoutInSeconds": 60})
    assert not [t for t in texts if "scalingTimeoutInSeconds" in t], texts


def test_a_scaling_timeout_within_the_graceful_stop_is_warned_about() -> None:
    texts = _warnings(
        {
            "minReplicas": 2,
            "maxReplicas": 4,
            "scalingTimeoutInSeconds": 60,
            "gracefulShutdownTimeoutInSeconds": 600,
        }
    )
    expected = (
        "spec.elasticPolicy.scalingTimeoutInSeconds: 60 s is not longer than "
        "gracefulShutdownTimeoutInSeconds (600 s)"
    )
    assert any(t.startswith(expected) for t in texts), texts


def test_a_negative_scaling_timeout_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"elasticPolicy\.scalingTimeoutInSeconds"):
        _load({"minReplicas": 2, "maxReplicas": 4, "scalingTimeoutInSeconds": -1})
