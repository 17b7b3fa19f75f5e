"""``elasticPolicy.scalingTimeoutInSeconds``: a resize that does not reach Running in time is
abandoned — a grow falls back to the size its started pods allow, a shrink becomes an ordinary
(counted) fault.

The controller harness (SQLite store, fake agents and backend, fake clock). A new node that
takes a pod but never runs it is the fake backend's ``stuck_start``: the pod stays up and its
agent never gets ready, as with the kubelet's ``CreateContainerConfigError``.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness
from tests.unit.controller.test_elastic import SNOOZE, _health, _ranks, elastic
from trainguard import constants as c
from trainguard.agent.protocol import AgentState, Training
from trainguard.controller.scaling import FIRST_STEP_WAIT
from trainguard.controller.state import JobPhase

TIMEOUT = 30
STUCK = 'CreateContainerConfigError: secret "s3-creds" not found'


def _nnodes(h: Harness) -> list[int]:
    """``nnodes`` of each rank's last ``/start``, by rank."""
    return [h.agent(rank).starts[-1].nnodes for rank, _ in _ranks(h) if rank is not None]


def _messages(h: Harness, reason: str) -> list[str]:
    return [message for _, r, message in h.events() if r == reason]


def _running_at(h: Harness, size: int, *, unschedulable: list[str], **policy: int) -> None:
    """Submit an elastic job of 1..3 nodes and run it at ``size`` (the other nodes unfit)."""
    for node in unschedulable:
        _health(h, node, c.HEALTH_UNSCHEDULABLE)
    h.submit(elastic(**policy))
    h.run_until(JobPhase.RUNNING)
    assert h.state().size == size


def _grow_onto_broken_nodes(h: Harness, nodes: list[str]) -> None:
    """The unfit nodes come back, but a pod placed on them never starts."""
    h.backend.stuck_start = STUCK
    for node in nodes:
        _health(h, node, c.HEALTH_SCHEDULABLE)
    h.step()
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 3, "growing"


def test_a_grow_whose_new_pod_never_starts_falls_back_and_keeps_training(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 2, unschedulable=["node-2"], scalingTimeoutInSeconds=TIMEOUT)
    _grow_onto_broken_nodes(h, ["node-2"])
    stuck = next(p.name for p in h.pods() if p.node == "node-2")
    h.step(TIMEOUT - 2, advance=1.0)
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 3, "still in time"
    assert not _messages(h, c.REASON_SCALING_TIMED_OUT)
    h.clock.advance(2)
    h.run_until(JobPhase.RUNNING)
    (timed_out,) = _messages(h, c.REASON_SCALING_TIMED_OUT)
    assert timed_out.startswith(
        f"Scaling from 2 to 3 node(s) did not reach Running within {TIMEOUT} s"
    )
    assert f"{stuck} on node-2 (init, {STUCK})" in timed_out
    assert timed_out.endswith("falling back to 2 node(s)")
    fallback = "Scaling from 3 to 2 node(s): the scale-up to 3 node(s) timed out"
    assert _messages(h, c.REASON_SCALE_DOWN)[-1] == fallback
    assert _ranks(h) == [(0, "node-0"), (1, "node-1")]
    assert _nnodes(h) == [2, 2], "the workers run again at the size before"
    for rank in range(2):
        h.agent(rank).training = Training(step=7, first_step=7, first_step_at=h.clock.wall())
    h.step()
    (resumed,) = _messages(h, c.REASON_TRAINING_RESUMED)
    assert "after the fault of reason ScalingTimedOut" in resumed
    assert stuck in h.backend.deleted
    status = h.status()
    assert status.restart_count == 0, "neither the grow nor its fallback is counted"
    assert (status.current_replicas, status.desired_replicas) == (2, 3)
    assert [r.restart_type for r in h.record().restarts] == [c.RESTART_SCALE] * 2


def test_after_a_fallback_the_grow_waits_out_the_snooze_again(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 2, unschedulable=["node-2"], scalingTimeoutInSeconds=TIMEOUT)
    _grow_onto_broken_nodes(h, ["node-2"])
    h.clock.advance(TIMEOUT)
    h.run_until(JobPhase.RUNNING)
    h.backend.stuck_start = None  # the node is repaired
    h.step(SNOOZE - 5, advance=1.0)
    assert h.state().phase is JobPhase.RUNNING and h.state().size == 2, "snoozing"
    h.clock.advance(FIRST_STEP_WAIT)  # the fake workers report no first step
    h.run_until(JobPhase.RESTARTING)
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1, 2] and _nnodes(h) == [3, 3, 3]


def test_a_partly_started_grow_falls_back_to_the_size_its_started_pods_allow(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 1, unschedulable=["node-1", "node-2"], scalingTimeoutInSeconds=TIMEOUT)
    _grow_onto_broken_nodes(h, ["node-1", "node-2"])
    started = next(p.name for p in h.pods() if p.node == "node-1")
    h.backend.agents[started].state = AgentState.READY  # this one got its Secret after all
    del h.backend.failures[started]
    h.clock.advance(TIMEOUT)
    h.run_until(JobPhase.RUNNING)
    (timed_out,) = _messages(h, c.REASON_SCALING_TIMED_OUT)
    assert timed_out.startswith("Scaling from 1 to 3 node(s)")
    assert timed_out.endswith("falling back to 2 node(s)")
    assert _ranks(h) == [(0, "node-0"), (1, "node-1")] and _nnodes(h) == [2, 2]
    assert h.status().restart_count == 0


def test_a_shrink_that_times_out_is_an_ordinary_counted_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 3, unschedulable=[], scalingTimeoutInSeconds=TIMEOUT)
    survivors = [h.agent(0), h.agent(2)]
    for agent in survivors:
        agent.stops_instantly = False  # their workers take long to stop
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.step(TIMEOUT - 2, advance=1.0)
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 2
    assert h.status().restart_count == 0, "still a Scale restart"
    h.clock.advance(5)
    h.step()
    (timed_out,) = _messages(h, c.REASON_SCALING_TIMED_OUT)
    assert timed_out.startswith("Scaling from 3 to 2 node(s) did not reach Running within 30 s")
    assert "(stopping)" in timed_out
    assert h.status().restart_count == 1, "the fault handling counts it"
    assert [r.restart_type for r in h.record().restarts] == [c.RESTART_SCALE, c.RESTART_PLR]
    for agent in survivors:
        agent.finish_stopping()
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1] and _nnodes(h) == [2, 2]


def test_the_faulty_scale_down_wait_is_not_part_of_the_resize(tmp_path: Path) -> None:
    """The timeout counts from the shrink, not from the fault: waiting for the lost node
    (``faultyScaleDownTimeoutInSeconds``) is not a resize that takes long."""
    h = Harness(tmp_path, nodes=3)
    _running_at(
        h, 3, unschedulable=[], scalingTimeoutInSeconds=5, faultyScaleDownTimeoutInSeconds=20
    )
    _health(h, "node-1", c.HEALTH_PENDING_REPLACEMENT)
    h.step(10, advance=1.0)
    h.clock.advance(20)
    h.run_until(JobPhase.RUNNING)
    assert [rank for rank, _ in _ranks(h)] == [0, 1]
    assert not _messages(h, c.REASON_SCALING_TIMED_OUT)
    assert h.status().restart_count == 0


def test_without_a_scaling_timeout_a_stuck_grow_keeps_waiting(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 2, unschedulable=["node-2"])
    _grow_onto_broken_nodes(h, ["node-2"])
    h.step(60, advance=1.0)
    assert h.state().phase is JobPhase.RESTARTING and h.state().size == 3
    assert not _messages(h, c.REASON_SCALING_TIMED_OUT)


def test_a_new_controller_keeps_counting_the_resize_it_finds(tmp_path: Path) -> None:
    """The resize's start is in the job's state: a controller that takes over mid-grow (its
    predecessor killed, a new operator leader) abandons it on time, not a full timeout later."""
    h = Harness(tmp_path, nodes=3)
    _running_at(h, 2, unschedulable=["node-2"], scalingTimeoutInSeconds=TIMEOUT)
    _grow_onto_broken_nodes(h, ["node-2"])
    h.step(TIMEOUT - 10, advance=1.0)
    h.controller.close()
    h.controller = h.new_controller()
    h.step(5, advance=1.0)
    assert h.state().size == 3 and not _messages(h, c.REASON_SCALING_TIMED_OUT)
    h.step(6, advance=1.0)
    assert _messages(h, c.REASON_SCALING_TIMED_OUT), "timed out, counted from the grow"
    h.run_until(JobPhase.RUNNING)
    assert _nnodes(h) == [2, 2]
