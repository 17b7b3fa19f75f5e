"""Requested faults: timed from the first training step, and every one ends with an outcome."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.agent.protocol import AgentState, Resume, Training
from trainguard.controller.state import JobPhase
from trainguard.errors import UsageError
from trainguard.policy.log_rules import RuleState
from trainguard.spec.faults import parse_fault
from trainguard.store.records import FaultOutcome, FaultRequest


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def requests(h: Harness) -> list[FaultRequest]:
    return h.store.list_fault_requests("default", "train")


def test_after_counts_from_the_first_training_step_not_from_running(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=1,after=5"])
    h.run_until(JobPhase.RUNNING)
    h.step(60, advance=1.0)  # a minute of booting workers: no step reported yet
    assert h.backend.signals == []
    assert requests(h)[0].outcome is FaultOutcome.PENDING
    h.agent(0).resume_at = Resume(step=None, tier="none")  # workers loaded nothing: step 1 next
    h.step()
    assert requests(h)[0].training_at is not None
    h.step(4, advance=1.0)
    assert h.backend.signals == []
    h.step(2, advance=1.0)
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]
    request = requests(h)[0]
    assert request.outcome is FaultOutcome.INJECTED and request.done_at is not None
    assert "SIGKILL to worker rank 1" in (request.result or "")


def test_at_step_waits_for_the_reported_step(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=2,at-step=30"])
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).steps = [10, 20]
    h.step(3)
    assert h.backend.signals == [] and requests(h)[0].reported_step == 20
    h.agent(1).steps = [20, 30]
    h.step()
    pod = next(p for p in h.pods() if p.node_rank == 1)
    assert h.backend.signals == [(pod.name, pod.pid * 10, signal.SIGKILL)]
    injected = [m for _, reason, m in h.events() if reason == c.REASON_FAULT_INJECTED]
    assert len(injected) == 1 and "at step 30" in injected[0]


def test_a_fault_still_pending_when_the_job_completes_is_not_injected(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=1,after=40"])
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).steps = [10]
    h.step(20, advance=1.0)
    for rank in (0, 1):
        h.agent(rank).finish()
    assert h.step() is JobPhase.COMPLETED
    assert h.backend.signals == []
    request = requests(h)[0]
    assert request.outcome is FaultOutcome.NOT_INJECTED
    assert request.result == "the job ended (Completed) at step 10 before the fault was due"
    warnings = [(t, m) for t, reason, m in h.events() if reason == c.REASON_FAULT_NOT_INJECTED]
    assert warnings and warnings[0][0] == "Warning" and "not injected" in warnings[0][1]


def test_a_fault_whose_target_is_missing_is_not_injected_with_the_reason(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.store.add_fault_request("default", "train", parse_fault("kill-worker:rank=9"), h.clock.wall())
    h.agent(0).steps = [10]
    h.step()
    request = requests(h)[0]
    assert request.outcome is FaultOutcome.NOT_INJECTED
    assert request.result == "no running worker has rank 9"


def test_deleting_the_job_closes_its_pending_faults(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:after=60"])
    h.run_until(JobPhase.RUNNING)
    h.store.add_fault_request("default", "other", parse_fault("kill-worker"), h.clock.wall())
    h.store.request_deletion("default", "train")
    assert [(r.job, r.outcome) for r in h.store.pending_fault_requests()] == [
        ("train", FaultOutcome.PENDING),
        ("other", FaultOutcome.PENDING),
    ]
    pending_id = h.store.pending_fault_requests()[0].id
    h.step()
    assert [r.job for r in h.store.pending_fault_requests()] == ["other"]
    with pytest.raises(Exception, match="not found"):
        h.store.get_fault_request(pending_id)  # removed with the job, after being closed


def test_a_fault_aimed_past_the_last_rank_is_refused_at_submit(h: Harness) -> None:
    with pytest.raises(UsageError, match=r"rank 4 is out of range; job train has ranks 0\.\.3"):
        h.submit(manifest(), faults=["kill-worker:rank=4"])
    assert h.store.find_job("default", "train") is None


def test_a_log_rule_that_matched_starts_the_clock_without_checkpoints(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=0,after=2"])
    h.run_until(JobPhase.RUNNING)
    h.agent(0).rules = {"JobStart": "WAITING"}
    h.step(10, advance=1.0)
    assert requests(h)[0].training_at is None and h.backend.signals == []
    h.agent(0).rules = {"JobStart": "HEALTHY"}  # the first "Loss:" line
    h.step()
    h.step(3, advance=1.0)
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]


def test_a_job_that_never_reports_training_ends_with_the_fault_not_injected(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=0,after=1"])
    h.run_until(JobPhase.RUNNING)
    h.step(10, advance=1.0)
    for rank in (0, 1):
        h.agent(rank).finish()
    assert h.step() is JobPhase.COMPLETED
    assert h.store.list_fault_requests("default", "train")[0].result == (
        "the job ended (Completed) without reporting a training step (no checkpoint or resume "
        "report from trainguard.checkpoint, no log rule matched), so the fault never became due"
    )


def test_at_step_follows_the_steps_a_script_reports(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=1,at-step=25"])
    h.run_until(JobPhase.RUNNING)
    for rank, step in ((0, 24), (1, 23)):
        h.agent(rank).training = Training(step=step, first_step=1, first_step_at=0.0)
    h.step()
    assert h.backend.signals == [] and requests(h)[0].training_at is not None
    h.agent(1).training = Training(step=25, first_step=1, first_step_at=0.0)
    h.step()
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]
    injected = [m for _, reason, m in h.events() if reason == c.REASON_FAULT_INJECTED]
    assert len(injected) == 1 and "at step 25" in injected[0]


def test_the_reconcile_step_alone_injects_nothing(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=1"])
    h.run_until(JobPhase.RUNNING)
    h.agent(0).steps = [10]
    for _ in range(5):
        h.clock.advance(1.0)
        h.controller.reconciler.reconcile(h.record())
    assert h.backend.signals == [] and requests(h)[0].outcome is FaultOutcome.PENDING
    h.step()  # the controller's step runs the injector after reconciling
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]
    assert "first_step_at" not in h.record().state.model_dump(), "no fault state in JobState"


def test_node_unhealthy_marks_the_node_as_the_health_agent_does(h: Harness) -> None:
    h.submit(
        manifest(), faults=["node-unhealthy:node=node-1,status=UnschedulablePendingReplacement"]
    )
    h.run_until(JobPhase.RUNNING)
    h.agent(0).steps = [10]
    h.step()
    labels = h.store.get_node("node-1").labels
    assert labels[c.LABEL_NODE_HEALTH] == c.HEALTH_PENDING_REPLACEMENT
    changed = h.store.list_events(kind="Node", name="node-1")
    assert [(e.type, e.reason, e.component) for e in changed] == [
        ("Warning", c.REASON_NODE_HEALTH_CHANGED, c.CONTROLLER_COMPONENT)
    ]
    assert "Schedulable -> UnschedulablePendingReplacement" in changed[0].message
    assert requests(h)[0].outcome is FaultOutcome.INJECTED


def test_a_restarted_controller_keeps_counting_from_the_first_training_step(h: Harness) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=0,after=5"])
    h.run_until(JobPhase.RUNNING)
    h.agent(0).steps = [10]
    h.step()
    started = requests(h)[0].training_at
    h.step(3, advance=1.0)
    h.controller.close()
    h.controller = h.new_controller()  # a fresh injector: its timing facts come from the rows
    h.step(1, advance=1.0)
    assert h.backend.signals == [] and requests(h)[0].training_at == started
    h.step(2, advance=1.0)
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]


def test_an_unreadable_fault_row_does_not_stop_the_controller(h: Harness, tmp_path: Path) -> None:
    h.submit(manifest(), faults=["kill-worker:rank=0"])
    h.run_until(JobPhase.RUNNING)
    with sqlite3.connect(tmp_path / "state.db") as raw:
        raw.execute('UPDATE faults SET spec=\'{"kind": "explode"}\'')
    h.agent(0).steps = [10]
    assert h.step(3) is JobPhase.RUNNING and h.backend.signals == []
    for rank in (0, 1):
        h.agent(rank).finish()
    assert h.step() is JobPhase.COMPLETED


def test_kill_worker_of_a_pod_whose_workers_finished_is_refused_not_sent_to_a_stale_pid(
    h: Harness,
) -> None:
    """A completed agent still lists its exited workers' pids; the job runs on while other
    pods train. Before, the injector signalled such a pid: on the local backend that read
    "process N does not belong to pod ..." (a `fault inject` from a second CLI near the end)."""
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).resume_at = Resume(step=None, tier="none")
    h.agent(1).finish()  # ranks 2 and 3 are done; pod 0 still trains
    h.step()
    h.store.add_fault_request("default", "train", parse_fault("kill-worker:rank=3"), 0.0)
    h.step()
    assert h.backend.signals == []
    request = requests(h)[-1]
    assert request.outcome is FaultOutcome.NOT_INJECTED
    assert "has already finished" in (request.result or "")


def test_a_due_fault_waits_while_an_agent_is_between_runs(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).resume_at = Resume(step=None, tier="none")
    h.step()
    h.agent(1).state = AgentState.STOPPING  # its pids are about to change
    h.store.add_fault_request("default", "train", parse_fault("kill-worker:rank=0"), 0.0)
    h.step()
    assert h.backend.signals == [] and requests(h)[-1].outcome is FaultOutcome.PENDING
    h.agent(1).state = AgentState.RUNNING
    h.step()
    assert [sig for _, _, sig in h.backend.signals] == [signal.SIGKILL]


def test_at_step_for_a_script_that_reports_no_steps_ends_naming_that_cause(h: Harness) -> None:
    """examples/mtc logs its steps but reports none to trainguard (HyperPod's MTC library,
    used directly): ``at-step=45`` could never fire, and the outcome must say why, not read
    as though the job merely ended early."""
    h.submit(manifest(), faults=["kill-worker:rank=1,at-step=45"])
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).rules = {"JobStart": RuleState.HEALTHY.value}  # a "Loss:" line matched
    h.step(5, advance=1.0)
    request = requests(h)[0]
    assert request.training_at is not None and request.reported_step is None
    for rank in (0, 1):
        h.agent(rank).finish()
    assert h.step() is JobPhase.COMPLETED
    result = requests(h)[0].result or ""
    assert result.startswith("the job ended (Completed): its workers trained but never reported")
    assert "at-step=45 could never fire" in result and "use after=" in result
