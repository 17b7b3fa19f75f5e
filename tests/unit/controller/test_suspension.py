"""Suspend and resume (`trainguard.controller.suspension`) with a scripted admission gate.

A job the gate holds back gets no pod and a ``Suspended`` condition; admitted, it gets pods on
nodes matching the admission's node selector, carrying its tolerations; evicted, its pods are
deleted with no restart counted, the gate is told once they are gone, and admitted again it
resumes from the newest step every rank held; at the end the gate's entry is finished.
``runPolicy.suspend`` does the same with no gate.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.backends.gate import Admission
from trainguard.controller.state import JobPhase
from trainguard.testing import ScriptedGate

HELD = Admission(admitted=False, reason="Pending", message="waiting for quota")
TOLERATION = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}


def condition(h: Harness, type_: str) -> tuple[str, str] | None:
    found = [x for x in h.status().conditions if x.type == type_]
    return (found[0].status, found[0].reason) if found else None


def running(h: Harness) -> None:
    h.run_until(JobPhase.RUNNING)


def test_a_held_job_gets_no_pod_until_admitted_then_runs_where_the_admission_says(
    tmp_path: Path,
) -> None:
    gate = ScriptedGate(HELD)
    h = Harness(tmp_path, gate=gate)
    h.add_node("gpu-node")
    h.store.patch_node("gpu-node", labels={"flavor": "gpu"}, annotations={})
    h.store.patch_node("node-0", labels={"flavor": "gpu"}, annotations={})
    h.submit(manifest())
    assert h.step(3) is JobPhase.PENDING
    assert h.pods() == []
    assert condition(h, c.COND_SUSPENDED) == ("True", "Pending")
    gate.admit(node_selector={"flavor": "gpu"}, tolerations=[TOLERATION])
    running(h)
    assert {p.node for p in h.pods()} == {"gpu-node", "node-0"}
    assert condition(h, c.COND_SUSPENDED) == ("False", c.REASON_RESUMED)
    launches = h.backend.launches
    assert all(x.node_selector == {"flavor": "gpu"} for x in launches)
    assert all(x.tolerations == (TOLERATION,) for x in launches)


def test_eviction_stops_the_pods_counts_no_restart_and_resumes_from_the_newest_step(
    tmp_path: Path,
) -> None:
    gate = ScriptedGate()
    h = Harness(tmp_path, gate=gate)
    h.submit(manifest())
    running(h)
    for rank in (0, 1):
        h.agent(rank).steps = [10, 20]
    h.step()
    first = {p.name for p in h.pods()}
    gate.evict()
    assert h.step() is JobPhase.SUSPENDED
    assert h.pods() == [] and first <= set(h.backend.deleted)
    assert condition(h, c.COND_SUSPENDED) == ("True", "Preempted")
    assert condition(h, c.COND_RUNNING) == ("False", c.REASON_SUSPENDED)
    h.step()
    assert gate.released_jobs and set(gate.released_jobs) == {"default/train"}
    assert h.status().restart_count == 0 and h.store.list_restarts("default", "train") == []
    gate.admit()
    running(h)
    again = {p.name for p in h.pods()}
    assert again and not again & first
    start = h.agent(0).starts[-1]
    assert start.progress and "20" in str(start.progress)
    assert h.status().restart_count == 0
    reasons = [reason for _, reason, _ in h.events()]
    assert reasons.count(c.REASON_SUSPENDED) == 1 and reasons.count(c.REASON_RESUMED) == 1
    for rank in (0, 1):
        h.agent(rank).finish()
    h.run_until(JobPhase.COMPLETED)
    assert gate.finished_jobs == [("default/train", True)]


def test_run_policy_suspend_holds_a_job_without_any_queue(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.submit(manifest(suspend=True))
    assert h.step(3) is JobPhase.PENDING
    assert h.pods() == []
    assert condition(h, c.COND_SUSPENDED) == ("True", "Suspended")


def test_run_policy_suspend_set_on_a_running_job_stops_it_and_clearing_it_resumes(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.submit(manifest())
    running(h)
    h.store.set_suspend("default", "train", suspend=True)
    assert h.record().job.spec.run_policy.suspend is True
    assert h.step() is JobPhase.SUSPENDED
    assert h.pods() == []
    h.store.set_suspend("default", "train", suspend=False)
    running(h)
    assert h.status().restart_count == 0


def test_deadlines_do_not_run_while_held_and_start_over_on_resume(tmp_path: Path) -> None:
    gate = ScriptedGate(HELD)
    h = Harness(tmp_path, gate=gate)
    h.submit(manifest(startupDeadlineSeconds=30, activeDeadlineSeconds=60))
    h.step()
    h.clock.advance(100)  # in the queue longer than the startup deadline
    assert h.step() is JobPhase.PENDING
    gate.admit()
    running(h)
    h.clock.advance(40)
    h.step()
    gate.evict()
    assert h.step() is JobPhase.SUSPENDED
    h.clock.advance(100)  # suspended longer than the active deadline
    assert h.step() is JobPhase.SUSPENDED
    gate.admit()
    running(h)
    h.clock.advance(40)  # 80 s of running in all, but 40 since the resume
    assert h.step() is JobPhase.RUNNING
    h.clock.advance(30)
    assert h.step() is JobPhase.FAILED
    assert condition(h, c.COND_FAILED) == ("True", "ActiveDeadlineExceeded")
