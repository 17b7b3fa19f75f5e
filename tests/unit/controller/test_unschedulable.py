"""A job asking for more pods than the cluster has nodes is Unschedulable, not attempted."""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness, manifest
from trainguard.controller.state import JobPhase
from trainguard.spec.limits import MAX_REPLICAS


def test_max_replicas_on_three_nodes_is_unschedulable_without_creating_pods(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, nodes=3)
    document = manifest()
    document["spec"]["replicaSpecs"][0]["replicas"] = MAX_REPLICAS
    h.submit(document)
    assert h.step(times=3) is JobPhase.PENDING
    assert h.pods() == []
    condition = next(x for x in h.status().conditions if x.type == "PodsRunning")
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    assert f"{MAX_REPLICAS} pod(s) to place, 3 free Schedulable node(s)" in condition.message
