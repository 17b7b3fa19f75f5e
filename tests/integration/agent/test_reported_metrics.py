"""Save stalls, a restore and log-rule evaluations of a real worker reach the controller's
metrics.

A real agent runs a real worker that saves three checkpoints (each save blocks the loop for
real), restores the newest one from the memory tier and prints lines its log rule evaluates.
The agent's ``/status`` must carry the stalls, the restore's tier and duration and the number
of evaluated lines (before, it had none of them and the controller had no such metrics); the
controller turns that status into ``trainguard_checkpoint_save_stall_seconds``,
``trainguard_checkpoint_restores_total{tier}``, ``trainguard_checkpoint_restore_seconds`` and
``trainguard_log_rule_evaluations_total``, scraped over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.agent.harness import SCRIPTS, agents, free_port, wait_for
from tests.unit.controller.harness import BASE, Harness
from tests.unit.controller.scrape import Scraper
from trainguard.agent.protocol import AgentState, TrainguardStatus
from trainguard.controller.state import JobPhase

pytestmark = pytest.mark.slow

RULES = [{"name": "Hang", "logPattern": "Loss: ", "expectedRecurringFrequencyInSeconds": 60}]


def real_report(tmp_path: Path) -> TrainguardStatus:
    durable = tmp_path / "durable"
    argv = ["--nproc-per-node=1", "--nnodes=1", str(SCRIPTS / "save_and_restore.py"), str(durable)]
    with agents(tmp_path / "agents", 1, argv) as (pod,):
        pod.start(0, 1, free_port(), log_monitoring_configuration=RULES)
        pod.wait_state(AgentState.COMPLETED, timeout=120)
        assert "RESTORED step=3 w=3.0" in pod.text()
        return wait_for("the rules' count", lambda: _evaluated(pod.status().trainguard), 10)


def _evaluated(extra: TrainguardStatus | None) -> TrainguardStatus | None:
    return extra if extra is not None and extra.rule_lines_evaluated >= 3 else None


def test_a_real_workers_stalls_restore_and_rule_lines_become_metrics(tmp_path: Path) -> None:
    report = real_report(tmp_path)
    assert report.checkpoint_saves == 3, "three saves; the restore is not a save"
    assert len(report.save_stalls) == 3 and all(s > 0 for s in report.save_stalls)
    resume = report.resume
    assert resume is not None and (resume.step, resume.tier) == (3, "memory")
    assert resume.seconds is not None and resume.seconds > 0

    harness = Harness(tmp_path)
    scrape = Scraper(harness.controller.metrics)
    try:
        harness.submit(BASE)
        harness.run_until(JobPhase.RUNNING)
        agent = harness.agent(1)
        agent.save_stalls = list(report.save_stalls)
        agent.resume_at = resume
        agent.rule_lines_evaluated = report.rule_lines_evaluated
        harness.step(3)
        stall = "trainguard_checkpoint_save_stall_seconds"
        assert scrape.value(f"{stall}_count") == 3.0
        assert scrape.value(f"{stall}_sum") == pytest.approx(sum(report.save_stalls), abs=1e-3)
        assert scrape.value("trainguard_checkpoint_restores_total", tier="memory") == 1.0
        took = scrape.value("trainguard_checkpoint_restore_seconds_sum", tier="memory")
        assert took == pytest.approx(resume.seconds)
        evaluated = scrape.value("trainguard_log_rule_evaluations_total")
        assert evaluated == float(report.rule_lines_evaluated)
    finally:
        scrape.close()
