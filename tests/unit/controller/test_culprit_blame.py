"""A hang reported by every pod is blamed on the culprit rank's pod and node, or on nobody."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard.controller.state import JobPhase

HANG = "LogStateHanging_JobHangingDetection"


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def hang_everywhere(h: Harness, *, stopped_node_rank: int | None, local_rank: int = 0) -> None:
    """Every agent's hang rule fires, pod 0 first; one worker is stopped (state T) if asked."""
    now = h.clock.wall()
    for node_rank in (0, 1):
        states = ["S", "S"]
        if node_rank == stopped_node_rank:
            states[local_rank] = "T"
        h.agent(node_rank).report_workers(*states, now=now)
        h.agent(node_rank).hang(now=now + node_rank)


@pytest.mark.parametrize(("node_rank", "local_rank"), [(0, 1), (1, 0)])
def test_hang_is_blamed_on_the_stopped_rank(h: Harness, node_rank: int, local_rank: int) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    culprit_pod = h.agent(node_rank).pod
    rank = node_rank * 2 + local_rank
    hang_everywhere(h, stopped_node_rank=node_rank, local_rank=local_rank)
    h.step()
    faulty = h.status().latest_faulty_pod_instance_list
    assert faulty is not None
    assert (faulty.faulty_pod_list, faulty.faulty_rank_list) == ([culprit_pod], [rank])
    assert faulty.faulty_instance_id_list == [f"node-{node_rank}"]
    condition = next(x for x in h.status().conditions if x.type == "Faulted")
    assert condition.reason == HANG
    expected = f"rank {rank} (pod {culprit_pod} on node-{node_rank}): stopped"
    assert expected in condition.message
    assert any(r == HANG and expected in m for _, r, m in h.events())


def test_no_rank_standing_out_names_nobody(h: Harness) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    hang_everywhere(h, stopped_node_rank=None)
    h.step()
    faulty = h.status().latest_faulty_pod_instance_list
    assert faulty is not None
    assert (faulty.faulty_pod_list, faulty.faulty_rank_list, faulty.faulty_instance_id_list) == (
        [],
        [],
        [],
    )
    condition = next(x for x in h.status().conditions if x.type == "Faulted")
    assert "culprit unknown" in condition.message
    assert h.agent(0).pod in condition.message, "the message still says who reported it"


def test_full_restart_avoids_the_culprits_node_not_the_first_reporter(h: Harness) -> None:
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
    hang_everywhere(h, stopped_node_rank=1)
    h.run_until(JobPhase.RUNNING)
    hang_everywhere(h, stopped_node_rank=1)
    assert h.step() is JobPhase.CREATING
    assert h.state().avoid == ["node-1"]
    assert sorted(p.node for p in h.pods()) == ["node-0", "node-2"]
