"""The job lifecycle, step by step, with fake agents: HyperPod's restart semantics end to end."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.agent.protocol import AgentState
from trainguard.controller.state import JobPhase


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_happy_path_runs_to_completed_and_cleans_pods(h: Harness) -> None:
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING
    assert [p.node for p in h.pods()] == ["node-0", "node-1"]
    assert all(p.labels[c.LABEL_JOB] == "train" for p in h.pods())
    assert h.step() is JobPhase.STARTING
    start = h.agent(1).starts[-1]
    assert (start.rank, start.nnodes, start.fault_count) == (1, 2, 0)
    assert start.trainguard is not None and [p.rank for p in start.trainguard.peers] == [0, 1]
    assert h.step() is JobPhase.RUNNING
    for rank in (0, 1):
        h.agent(rank).finish()
    assert h.step() is JobPhase.COMPLETED
    status = h.status()
    assert [x.type for x in status.conditions][-1] == "Completed"
    assert {x.type for x in status.conditions} >= {"Created", "PodsRunning", "Running", "Completed"}
    assert status.completion_time is not None and status.restart_count == 0
    assert h.pods() == []
    assert h.backend.released == ["default/train"]


def test_worker_crash_is_a_process_level_restart_keeping_pods(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    pods_before = [p.name for p in h.pods()]
    h.agent(1).crash(local_rank=1, exitcode=137, now=h.clock.wall())
    assert h.step() is JobPhase.RESTARTING
    assert h.agent(0).stops == 1 and h.agent(1).stops == 1
    assert h.step() is JobPhase.STARTING
    assert h.agent(0).starts[-1].fault_count == 1
    assert h.agent(0).starts[-1].master_port != h.agent(0).starts[0].master_port
    assert h.step() is JobPhase.RUNNING
    assert [p.name for p in h.pods()] == pods_before
    status = h.status()
    assert status.restart_count == 1 and status.restart_status.restart_count == 1
    faulty = status.latest_faulty_pod_instance_list
    assert faulty is not None and (faulty.restart_type, faulty.faulty_rank_list) == ("PLR", [3])
    messages = [m for _, reason, m in h.events() if reason == "Running"]
    assert messages[-1].startswith("The fault of reason WorkerCrash was remediated in ")
    assert messages[-1].endswith(" milliseconds.")


def test_escalation_to_full_restart_then_failure(h: Harness) -> None:
    h.submit(
        manifest(
            restartPolicy={
                "numRestartBeforeFullJobRestart": 1,
                "evalPeriodSeconds": 600,
                "maxFullJobRestarts": 1,
            }
        )
    )
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    first_pods = {p.name for p in h.pods()}
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.CREATING, "the full restart deletes and recreates in one step"
    assert any(reason == "FullJobRestart" for _, reason, _ in h.events())
    second_pods = {p.name for p in h.pods()}
    assert first_pods.isdisjoint(second_pods)
    assert {p.labels[c.LABEL_RESTART_ATTEMPT] for p in h.pods()} == {"1"}
    h.run_until(JobPhase.RUNNING)
    assert h.status().restart_status.full_job_restart_count == 1
    assert h.agent(0).starts[-1].fault_count == 2
    h.agent(1).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    h.agent(1).crash(now=h.clock.wall())
    assert h.step() is JobPhase.FAILED
    failed = h.status().conditions[-1]
    assert (failed.type, failed.reason) == ("Failed", "MaxFullJobRestartsExceeded")


def test_retry_budget_and_only_complete_keeps_failed_pods(h: Harness) -> None:
    h.submit(manifest(jobMaxRetryCount=1, cleanPodPolicy="OnlyComplete"))
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.FAILED
    assert h.status().conditions[-1].reason == "JobMaxRetryCountExceeded"
    assert len(h.pods()) == 2
    assert h.step() is JobPhase.FAILED


def test_log_rule_reasons_become_job_reasons(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(1).crash(now=h.clock.wall(), reason="LogHang_JobHangingDetection")
    h.step()
    faulted = next(x for x in h.status().conditions if x.type == "Faulted")
    assert faulted.reason == "LogStateHanging_JobHangingDetection"
    h.run_until(JobPhase.RUNNING)
    assert (
        h.status()
        .conditions[-1]
        .message.startswith(
            "The fault of reason LogStateHanging_JobHangingDetection was remediated"
        )
    )


def test_node_fault_moves_the_rank_to_a_spare_pod(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=4)
    document = manifest()
    document["spec"]["replicaSpecs"][0]["spares"] = 1
    h.submit(document)
    h.run_until(JobPhase.RUNNING)
    spare = next(p for p in h.pods() if p.spare)
    bad_node = h.store.list_pods("default", "train")[1].node
    h.store.patch_node(bad_node, labels={c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT})
    h.run_until(JobPhase.RUNNING)
    promoted = next(p for p in h.pods() if p.name == spare.name)
    assert (promoted.spare, promoted.node_rank) == (False, 1)
    assert bad_node not in {p.node for p in h.pods()}
    assert ("Warning", "NodeFault", f"Found unhealthy node {bad_node}") in h.node_events()
    assert any(
        m.startswith("The fault of reason NodeFault was remediated") for _, _, m in h.events()
    )
    assert len([p for p in h.pods() if p.spare]) == 1, "a new spare refills the pool"


def test_node_fault_without_spares_uses_a_free_node(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.store.patch_node("node-0", labels={c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REPLACEMENT})
    h.run_until(JobPhase.RUNNING)
    assert sorted(p.node for p in h.pods()) == ["node-1", "node-2"]
    assert h.status().restart_count == 1


def test_lost_pod_is_recreated_on_its_node(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    victim = next(p for p in h.pods() if p.node_rank == 1)
    h.backend.kill(victim.name)
    h.run_until(JobPhase.RUNNING)
    replacement = next(p for p in h.pods() if p.node_rank == 1)
    assert replacement.name != victim.name and replacement.node == victim.node
    assert h.status().conditions[-1].message.startswith("The fault of reason PodLost")


def test_a_new_controller_adopts_a_restart_in_flight(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).stops_instantly = False
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.RESTARTING
    pods = [p.name for p in h.pods()]
    h.controller.close()
    h.clock.advance(30)
    h.controller = h.new_controller()
    for rank in (0, 1):
        assert h.agent(rank).state is AgentState.STOPPING
        h.agent(rank).finish_stopping()
    h.run_until(JobPhase.RUNNING)
    assert [p.name for p in h.pods()] == pods
    assert h.agent(0).starts[-1].fault_count == 1 and len(h.agent(0).starts) == 2


def test_agreed_checkpoint_step_goes_to_start(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).steps = [10, 20, 30]
    h.agent(1).steps = [10, 20]
    h.step()
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    assert h.agent(1).starts[-1].progress == {
        "trainguard": {"progressCount": 20, "progressData": "step_20"}
    }


def test_resume_is_recorded_once_per_restart(h: Harness) -> None:
    from trainguard.agent.protocol import Resume as AgentResume

    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).resume_at = AgentResume(step=20, tier="memory")
    h.step(3)
    assert [(r.restart, r.step, r.tier) for r in h.status().resumes] == [(1, 20, "memory")]


def test_requested_fault_is_injected_after_its_delay(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=3,after=5"])
    h.run_until(JobPhase.RUNNING)
    h.agent(1).steps = [10]
    h.step(3)
    assert h.backend.signals == []
    h.clock.advance(5)
    h.step()
    pod = next(p for p in h.pods() if p.node_rank == 1)
    assert h.backend.signals == [(pod.name, pod.pid * 10 + 1, signal.SIGKILL)]
    assert any(reason == "FaultInjected" for _, reason, _ in h.events())


def test_node_unhealthy_fault_labels_the_node_of_the_rank(h: Harness) -> None:
    h.submit(manifest(), faults=["node-unhealthy:rank=2"])
    h.run_until(JobPhase.RUNNING)
    h.agent(0).steps = [10]
    h.step()
    node = next(p for p in h.pods() if p.node_rank == 1).node
    assert h.store.get_node(node).labels[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REBOOT


def test_deletion_removes_pods_and_the_job(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.store.request_deletion("default", "train")
    assert h.step() is None
    assert h.pods() == [] and h.store.find_job("default", "train") is None


def test_active_deadline_fails_the_job(h: Harness) -> None:
    h.submit(manifest(activeDeadlineSeconds=60))
    h.run_until(JobPhase.RUNNING)
    h.clock.advance(61)
    assert h.step() is JobPhase.FAILED
    assert h.status().conditions[-1].reason == "ActiveDeadlineExceeded"


def test_unschedulable_job_waits_for_nodes(tmp_path: Path) -> None:
    h = Harness(tmp_path, nodes=1)
    h.submit(manifest())
    assert h.step() is JobPhase.PENDING
    pods_running = next(x for x in h.status().conditions if x.type == "PodsRunning")
    assert (pods_running.status, pods_running.reason) == ("False", "Unschedulable")
    h.add_node("node-1")
    assert h.step() is JobPhase.CREATING


def test_no_restart_policy_fails_on_first_fault(h: Harness) -> None:
    document = manifest()
    del document["spec"]["runPolicy"]
    h.submit(document)
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.FAILED
    assert h.status().conditions[-1].reason == "NoRestartPolicy"
