"""Save stalls, restores and log-rule evaluations the agents report, as controller metrics.

The agents report running totals that every poll reads again; each save, restore and evaluated
line must be observed exactly once: not once per step, not again after a restart of the
workers, and not at all from a step whose status write lost a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from tests.unit.controller.scrape import Scraper
from tests.unit.controller.test_metrics import interfere_once
from trainguard.agent.protocol import MAX_SAVE_STALLS, CheckpointFailure, Resume
from trainguard.controller.state import JobPhase
from trainguard.store import SqliteStore

STALL = "trainguard_checkpoint_save_stall_seconds"
RESTORES = "trainguard_checkpoint_restores_total"
RESTORE_TIME = "trainguard_checkpoint_restore_seconds"
EVALUATED = "trainguard_log_rule_evaluations_total"
DROPPED = "trainguard_log_rule_lines_dropped_total"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path)
    harness.submit(manifest())
    harness.run_until(JobPhase.RUNNING)
    return harness


@pytest.fixture
def scrape(h: Harness) -> Iterator[Scraper]:
    scraper = Scraper(h.controller.metrics)
    yield scraper
    scraper.close()


def test_each_save_stall_is_observed_once(h: Harness, scrape: Scraper) -> None:
    h.agent(0).save_stalls += [0.02, 0.3]
    h.agent(1).save_stalls += [0.04]
    h.step(3)
    assert scrape.value(f"{STALL}_count") == 3.0
    assert scrape.value(f"{STALL}_sum") == pytest.approx(0.36)
    assert scrape.value(f"{STALL}_bucket", le="0.05") == 2.0
    h.agent(0).save_stalls += [7.0]
    h.step(2)
    assert scrape.value(f"{STALL}_count") == 4.0
    assert scrape.value(f"{STALL}_sum") == pytest.approx(7.36)


def test_saves_beyond_the_reported_window_are_not_invented(h: Harness, scrape: Scraper) -> None:
    h.agent(0).save_stalls += [0.01] * (MAX_SAVE_STALLS + 36)  # 100 saves between two polls
    h.step()
    assert scrape.value(f"{STALL}_count") == float(MAX_SAVE_STALLS)


def test_a_restore_is_counted_once_per_start_by_tier(h: Harness, scrape: Scraper) -> None:
    for rank in (0, 1):
        h.agent(rank).resume_at = Resume(step=20, tier="memory", seconds=0.5 + rank)
    h.step(3)
    assert scrape.value(RESTORES, tier="memory") == 2.0, "one restore per pod"
    assert scrape.value(f"{RESTORE_TIME}_count", tier="memory") == 2.0
    assert scrape.value(f"{RESTORE_TIME}_sum", tier="memory") == pytest.approx(2.0)
    h.agent(0).crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)  # the new start's agents have not reported a resume yet...
    for rank in (0, 1):  # ...now they do: this start restored from the durable tier
        h.agent(rank).resume_at = Resume(step=40, tier="durable", seconds=3.0)
    h.step(3)
    assert scrape.value(RESTORES, tier="memory") == 2.0
    assert scrape.value(RESTORES, tier="durable") == 2.0
    assert scrape.value(f"{RESTORE_TIME}_sum", tier="durable") == pytest.approx(6.0)


def test_a_start_from_scratch_is_no_restore_and_odd_tiers_stay_bounded(
    h: Harness, scrape: Scraper
) -> None:
    h.agent(0).resume_at = Resume(step=None, tier="none")
    h.agent(1).resume_at = Resume(step=10, tier="x" * 300)
    h.step(2)
    assert scrape.value(RESTORES, tier="none") is None
    assert scrape.value(RESTORES, tier="unknown") == 1.0
    assert scrape.value(f"{RESTORE_TIME}_count", tier="unknown") is None, "no seconds reported"


def test_rule_evaluations_and_dropped_lines_across_a_restart(h: Harness, scrape: Scraper) -> None:
    agent = h.agent(0)
    agent.rule_lines_evaluated, agent.rule_lines_dropped = 500, 20
    h.step(2)
    agent.rule_lines_evaluated = 800
    h.step(2)
    assert scrape.value(EVALUATED) == 800.0
    assert scrape.value(DROPPED) == 20.0
    agent.crash(now=h.clock.wall())
    h.run_until(JobPhase.RUNNING)  # the agent's counters start again at 0 with the new start
    agent.rule_lines_evaluated = 50
    h.step(2)
    assert scrape.value(EVALUATED) == 850.0
    assert scrape.value(DROPPED) == 20.0


def test_a_step_whose_write_failed_counts_nothing_twice(
    h: Harness, scrape: Scraper, tmp_path: Path
) -> None:
    agent = h.agent(0)
    agent.save_stalls += [0.2, 0.2]
    agent.checkpoint_failures.append(
        CheckpointFailure(step=20, rank=0, message="disk full", time=h.clock.wall())
    )  # a status change, so the step writes (and its write loses the race)
    interfere_once(agent, SqliteStore(tmp_path / "state.db"))
    h.step()
    assert scrape.value(f"{STALL}_count") == 0.0
    h.step(3)
    assert scrape.value(f"{STALL}_count") == 2.0


def test_deleting_the_job_forgets_its_totals(h: Harness, scrape: Scraper) -> None:
    h.agent(0).save_stalls += [0.1]
    h.step()
    h.store.request_deletion("default", "train")
    assert h.step() is None
    assert h.controller.metrics._tally._seen == {}
    assert scrape.value(f"{STALL}_count") == 1.0
