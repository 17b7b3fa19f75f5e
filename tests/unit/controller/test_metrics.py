"""Every controller metric, observed through a real scrape after a harness run that produces it.

The metrics are typed methods of `Metrics`; the ``"restarted:PLR"`` strings (split and
dispatched by an if-chain that dropped a misspelt name silently) are gone, and a metric is
applied only after its step's status write succeeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.controller.harness import BASE, Harness, manifest
from tests.unit.controller.scrape import Scraper
from trainguard import constants as c
from trainguard.agent.protocol import AgentStatus, CheckpointFailure
from trainguard.controller.context import JobContext
from trainguard.controller.state import JobPhase
from trainguard.metrics import Metrics
from trainguard.store import SqliteStore
from trainguard.testing import FakeAgent

HPO = "hyperpod_training_operator"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
def scrape(h: Harness) -> Iterator[Scraper]:
    scraper = Scraper(h.controller.metrics)
    yield scraper
    scraper.close()


def test_a_restart_and_a_completion_are_counted_once(h: Harness, scrape: Scraper) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    assert scrape.value(f"{HPO}_jobs_created_total") == 1.0
    assert scrape.value("trainguard_active_jobs") == 1.0
    h.agent(1).crash(now=h.clock.wall() - 2.0)
    h.run_until(JobPhase.RUNNING)
    h.step(3)
    for rank in (0, 1):
        h.agent(rank).finish()
    h.run_until(JobPhase.COMPLETED)
    h.step(2)
    assert scrape.value(f"{HPO}_jobs_created_total") == 1.0, "once, not once per step"
    assert scrape.value(f"{HPO}_jobs_restarted_total", restart_type="PLR") == 1.0
    assert scrape.value(f"{HPO}_jobs_restarted_total", restart_type="JLR") is None
    assert scrape.value(f"{HPO}_jobs_restart_latency_count") == 1.0
    assert scrape.value(f"{HPO}_jobs_fault_detection_latency_count") == 1.0
    assert scrape.value("trainguard_faults_detected_total", reason="WorkerCrash") == 1.0
    detection = scrape.value(f"{HPO}_jobs_fault_detection_latency_sum")
    assert detection is not None and detection >= 2.0, "the crash happened 2 s before the step"
    assert scrape.value(f"{HPO}_jobs_successful_total") == 1.0
    assert scrape.value(f"{HPO}_jobs_failed_total") == 0.0
    assert scrape.value("trainguard_active_jobs") == 0.0
    goodput = scrape.value("trainguard_job_goodput", job="default/train")
    assert goodput is not None and 0.0 <= goodput <= 1.0
    steps = scrape.value("trainguard_controller_step_seconds_count")
    assert steps is not None and steps >= 10
    created = [name for name, _ in scrape.samples() if name.endswith("_created")]
    assert created == [], "prometheus_client's *_created timestamps stay off"


def test_a_full_restart_then_a_failure(h: Harness, scrape: Scraper) -> None:
    h.submit(
        manifest(
            restartPolicy={
                "numRestartBeforeFullJobRestart": 1,
                "evalPeriodSeconds": 600,
                "maxFullJobRestarts": 1,
            }
        )
    )
    for _ in range(3):  # PLR, then JLR (PLRs exhausted), then PLR again
        h.run_until(JobPhase.RUNNING)
        h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)
    h.agent(0).crash(now=h.clock.wall())  # full restarts exhausted
    h.run_until(JobPhase.FAILED)
    assert scrape.value(f"{HPO}_jobs_restarted_total", restart_type="PLR") == 2.0
    assert scrape.value(f"{HPO}_jobs_restarted_total", restart_type="JLR") == 1.0
    assert scrape.value(f"{HPO}_jobs_failed_total") == 1.0
    assert scrape.value(f"{HPO}_jobs_successful_total") == 0.0
    left = scrape.value("trainguard_job_full_restarts_remaining", job="default/train")
    assert left == 0.0, "maxFullJobRestarts 1, one taken"


def test_deletion_counts_and_drops_the_jobs_series(h: Harness, scrape: Scraper) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.step()
    assert scrape.value("trainguard_job_goodput", job="default/train") is not None
    h.store.request_deletion("default", "train")
    assert h.step() is None
    assert scrape.value(f"{HPO}_jobs_deleted_total") == 1.0
    assert scrape.value("trainguard_job_goodput", job="default/train") is None


def test_a_step_whose_write_lost_a_race_applies_no_metric(
    h: Harness, scrape: Scraper, tmp_path: Path
) -> None:
    """A second writer saves the job while the step polls the agents: the step's write fails
    with a conflict, so its metrics are dropped; the next step counts the failure once."""
    h.submit(BASE)
    h.run_until(JobPhase.RUNNING)
    agent = h.agent(0)
    agent.checkpoint_failures.append(
        CheckpointFailure(step=20, rank=0, message="disk full", time=h.clock.wall())
    )
    other = SqliteStore(tmp_path / "state.db")
    interfere_once(agent, other)
    h.step()
    assert scrape.value("trainguard_checkpoint_save_failures_total") == 0.0
    assert h.status().checkpoint is None, "the conflicting write was dropped"
    h.step(3)
    assert scrape.value("trainguard_checkpoint_save_failures_total") == 1.0
    status = h.status().checkpoint
    assert status is not None and status.failure_count == 1


def interfere_once(agent: FakeAgent, other: SqliteStore) -> None:
    """On the agent's next ``/status``, write the job from ``other`` (a second connection)."""
    answer = agent.status

    def status() -> AgentStatus:
        object.__delattr__(agent, "status")
        job = other.get_job("default", "train")
        job.status.restart_count += 1  # a real change, so the save is not skipped
        other.save_job(job)
        return answer()

    object.__setattr__(agent, "status", status)


def test_the_string_api_is_gone(h: Harness) -> None:
    assert not hasattr(Metrics, "observe")
    h.submit(manifest())
    ctx: JobContext = h.controller.reconciler.observe(h.record())
    with pytest.raises(TypeError, match="not a Metrics method"):
        ctx.metric("restarted:PLR")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a Metrics method"):
        ctx.metric(print)  # type: ignore[arg-type]
    ctx.metric(Metrics.job_failed)
    assert len(ctx.metrics) == 1


MISSPELT = """
from trainguard.constants import RestartType
from trainguard.controller.context import JobContext
from trainguard.metrics import Metrics


def step(ctx: JobContext) -> None:
    ctx.metric(Metrics.job_restartd, restart_type=RestartType.PLR)
    ctx.metric(Metrics.job_restarted, restart_type="PLR")
    ctx.metric(Metrics.restart_latency)
    ctx.metric(Metrics.job_created)
"""


def test_mypy_rejects_a_wrong_metric_name_or_argument(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    source = tmp_path / "misspelt.py"
    source.write_text(MISSPELT)
    out, _, code = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert code == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["8", "9", "10"], out
    assert '"job_restartd"' in errors[0]
    assert '"RestartType"' in errors[1]
    assert '"seconds"' in errors[2]


def test_node_health_gauge_follows_the_label(h: Harness, scrape: Scraper) -> None:
    """One series per node for its current sagemaker.amazonaws.com/node-health-status."""
    h.step()
    assert scrape.value("trainguard_node_health_status", node="node-1", status="Schedulable") == 1.0
    node = h.store.get_node("node-1")
    labels = {**node.labels, c.LABEL_NODE_HEALTH: c.HEALTH_PENDING_REBOOT}
    h.store.save_node(replace(node, labels=labels))
    h.step()
    reboot = scrape.value(
        "trainguard_node_health_status", node="node-1", status=labels[c.LABEL_NODE_HEALTH]
    )
    assert reboot == 1.0
    assert (
        scrape.value("trainguard_node_health_status", node="node-1", status="Schedulable") is None
    )
