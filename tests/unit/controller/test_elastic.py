"""Issue 19: elastic jobs start with what fits, shrink instead of waiting, grow when nodes return.

The controller harness (SQLite store, fake agents and backend, fake clock): nodes are made
unfit by their health label, as the health agent would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.agent.protocol import Training
from trainguard.controller.scaling import FIRST_STEP_WAIT
from trainguard.controller.state import JobPhase

SNOOZE = 30


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path, nodes=3)


def elastic(**policy: Any) -> dict[str, Any]:
    document = manifest(jobMaxRetryCount=1)
    document["spec"]["replicaSpecs"][0]["replicas"] = 3
    document["spec"]["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": 3, **policy}
    document["spec"]["runPolicy"]["restartPolicy"]["scaleUpSnoozeTimeInSeconds"] = SNOOZE
    return document


def _health(h: Harness, node: str, health: str) -> None:
    h.store.patch_node(node, labels={c.LABEL_NODE_HEALTH: health})


def _ranks(h: Harness) -> list[tuple[int | None, str]]:
    return sorted((p.node_rank, p.node) for p in h.pods() if not p.spare)


def _last_start(h: Harness, rank: int) -> tuple[int, int]:
    request = h.agent(rank).starts[-1]
    return request.rank, request.nnodes


def test_a_node_starved_start_runs_at_what_fits_then_grows(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=3)
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    _health(h, "node-2", c.HEALTH_PENDING_REPLACEMENT)
    h.submit(elastic())
    h.run_until(JobPhase.RUNNING)
    assert _ranks(h) == [(0, "node-0")]
    assert _last_start(h, 0) == (0, 1)
    assert (h.status().current_replicas, h.status().desired_replicas) == (1, 3)
    _health(h, "node-1", c.HEALTH_SCHEDULABLE)
    _health(h, "node-2", c.HEALTH_SCHEDULABLE)
    h.step()
    assert h.state().phase is JobPhase.RESTARTING
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1, 2]
    assert [_last_start(h, r) for r in range(3)] == [(0, 3), (1, 3), (2, 3)]
    assert h.status().current_replicas == 3
    assert ("Normal", c.REASON_SCALE_UP) in {(t, r) for t, r, _ in h.events()}


def test_a_lost_node_without_spare_shrinks_and_comes_back_after_the_snooze(h: Harness) -> None:
    h.submit(elastic())
    h.run_until(JobPhase.RUNNING)
    survivor_pods = {p.name for p in h.pods() if p.node != "node-1"}
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.run_until(JobPhase.RUNNING)
    assert _ranks(h) == [(0, "node-0"), (1, "node-2")], "survivors renumbered 0..n-1"
    assert {p.name for p in h.pods()} == survivor_pods, "survivors keep their pods"
    assert [_last_start(h, r) for r in range(2)] == [(0, 2), (1, 2)]
    scale_down = [m for _, r, m in h.events() if r == c.REASON_SCALE_DOWN]
    assert scale_down and scale_down[0].startswith("Scaling from 3 to 2 node(s)")
    status = h.status()
    assert status.restart_count == 0, "a resize does not count against jobMaxRetryCount"
    assert status.latest_faulty_pod_instance_list is not None
    assert status.latest_faulty_pod_instance_list.restart_type == c.RESTART_SCALE
    assert (status.current_replicas, status.desired_replicas) == (2, 3)
    _health(h, "node-1", c.HEALTH_SCHEDULABLE)
    h.step(5, advance=1.0)
    assert h.state().phase is JobPhase.RUNNING and h.state().size == 2, "snoozing"
    h.clock.advance(FIRST_STEP_WAIT)  # the fake workers report no first step
    h.run_until(JobPhase.RESTARTING)
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1, 2]
    assert h.status().current_replicas == 3
    assert [r.restart_type for r in h.record().restarts] == [c.RESTART_SCALE, c.RESTART_SCALE]


def test_a_free_node_replaces_the_lost_one_instead_of_shrinking(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    h.submit(elastic())
    h.run_until(JobPhase.RUNNING)
    lost = next(p.node for p in h.pods() if p.node_rank == 1)
    _health(h, lost, c.HEALTH_PENDING_REPLACEMENT)
    h.run_until(JobPhase.RUNNING)
    assert len(_ranks(h)) == 3 and lost not in {node for _, node in _ranks(h)}
    assert h.state().size == 3
    assert h.status().restart_count == 1, "a replacement is an ordinary, counted PLR"


def test_discrete_sizes_drop_surplus_survivors(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    document = elastic(maxReplicas=4, replicaDiscreteValues=[1, 2, 4])
    document["spec"]["replicaSpecs"][0]["replicas"] = 4
    h.submit(document)
    h.run_until(JobPhase.RUNNING)
    assert len(_ranks(h)) == 4
    _health(h, "node-3", c.HEALTH_PENDING_REBOOT)
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1], "3 survive, 2 is the largest allowed"
    assert [_last_start(h, r) for r in range(2)] == [(0, 2), (1, 2)]


def test_no_shrink_below_min_waits_for_a_node(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=2)
    document = elastic(minReplicas=2, maxReplicas=2)
    document["spec"]["replicaSpecs"][0]["replicas"] = 2
    h.submit(document)
    h.run_until(JobPhase.RUNNING)
    _health(h, "node-0", c.HEALTH_PENDING_REPLACEMENT)
    h.step(5)
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 2
    assert h.status().restart_count == 1
    h.add_node("node-9")
    h.run_until(JobPhase.RUNNING)
    assert sorted(node for _, node in _ranks(h)) == ["node-1", "node-9"]


def test_a_resize_stops_gracefully_with_the_policys_timeout(h: Harness) -> None:
    h.submit(elastic(gracefulShutdownTimeoutInSeconds=45))
    h.run_until(JobPhase.RUNNING)
    survivor = h.agent(0)
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.run_until(JobPhase.RUNNING)
    request = survivor.stop_requests[-1]
    assert request is not None and (request.is_graceful, request.timeout) == (True, 45)


def test_faulty_scale_down_timeout_waits_for_a_node_before_shrinking(h: Harness) -> None:
    h.submit(elastic(faultyScaleDownTimeoutInSeconds=20))
    h.run_until(JobPhase.RUNNING)
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.step(10, advance=1.0)
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 3, "still waiting"
    h.clock.advance(20)
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1]
    assert h.status().restart_count == 0
    scale_down = [m for _, r, m in h.events() if r == c.REASON_SCALE_DOWN]
    assert scale_down[0].startswith("Waiting up to 20 s")
    assert scale_down[-1] == "Scaling from 3 to 2 node(s): no node for the other ranks"


def test_a_node_back_within_the_faulty_timeout_takes_the_lost_rank(h: Harness) -> None:
    h.submit(elastic(faultyScaleDownTimeoutInSeconds=20))
    h.run_until(JobPhase.RUNNING)
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.step(3, advance=1.0)
    h.add_node("node-9")
    h.run_until(JobPhase.RUNNING)
    assert sorted(node for _, node in _ranks(h)) == ["node-0", "node-2", "node-9"]
    assert h.state().size == 3 and h.status().restart_count == 0


def test_a_plain_job_without_a_free_node_waits_instead_of_starting_short(tmp_path: Path) -> None:
    """Without elasticPolicy a lost rank is replaced, never dropped: the restart waits (it
    used to start the survivors alone once the replacement failed to place)."""
    h = Harness(tmp_path, nodes=2)
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    _health(h, "node-0", c.HEALTH_PENDING_REPLACEMENT)
    h.step(10)
    assert h.state().phase is JobPhase.RESTARTING
    h.add_node("node-9")
    h.run_until(JobPhase.RUNNING)
    assert sorted(node for _, node in _ranks(h)) == ["node-1", "node-9"]


def test_the_snooze_counts_from_training_resumed_after_a_shrink(h: Harness) -> None:
    h.submit(elastic())
    h.run_until(JobPhase.RUNNING)
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.run_until(JobPhase.RUNNING)
    h.clock.advance(SNOOZE - 5)  # the workers take a while to do their first step
    for rank in range(2):
        agent = h.agent(rank)
        now = h.clock.wall()
        agent.training = Training(step=41, first_step=41, first_step_at=now)
    _health(h, "node-1", c.HEALTH_SCHEDULABLE)
    h.step(3)
    assert any(r == c.REASON_TRAINING_RESUMED for _, r, _ in h.events())
    h.clock.advance(SNOOZE - 2)  # past the snooze since the resize, not since training
    h.step(2)
    assert h.state().size == 2, "snoozing: counted from training resumed, not from the resize"
    h.clock.advance(10)
    h.run_until(JobPhase.RESTARTING)
    assert h.state().size == 3
