"""Pods a step created that the next step's store does not show yet.

On Kubernetes the store reads pods from a watch cache; a pod whose creation the controller's
own write did not put into the cache (that write failed after the create) shows up only when
the watch delivers it. Until then the job waits in ``Creating`` instead of starting workers on
the pods it sees (which crashed the step when it saw none: "list index out of range"), and a
pod that never shows up is a ``PodLost`` fault naming the node rank after the ready timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.controller.state import JobPhase


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def hide(h: Harness, monkeypatch: pytest.MonkeyPatch, names: set[str]) -> None:
    """The store lists every pod but ``names`` (a watch that has not delivered them)."""
    real = h.store.list_pods

    def list_pods(*args: Any, **kwargs: Any) -> list[Any]:
        return [p for p in real(*args, **kwargs) if p.name not in names]

    monkeypatch.setattr(h.store, "list_pods", list_pods)


@pytest.mark.parametrize("hidden_ranks", [{0, 1}, {1}])
def test_workers_start_only_once_every_rank_pod_is_seen(
    h: Harness, monkeypatch: pytest.MonkeyPatch, hidden_ranks: set[int]
) -> None:
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING
    names = {p.name for p in h.pods() if p.node_rank in hidden_ranks}
    agents = [h.agent(rank) for rank in (0, 1)]
    with monkeypatch.context() as lagging:
        hide(h, lagging, names)
        assert h.step(times=3) is JobPhase.CREATING
        assert all(not agent.starts for agent in agents)
    assert h.step() is JobPhase.STARTING
    assert [agent.starts[-1].nnodes for agent in agents] == [2, 2]


def test_a_rank_pod_never_seen_is_a_pod_lost_fault_after_the_ready_timeout(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING
    hide(h, monkeypatch, {p.name for p in h.pods() if p.node_rank == 1})
    assert h.step() is JobPhase.CREATING
    h.clock.advance(181)
    h.step()
    lost = [m for _, reason, m in h.events() if reason == c.REASON_POD_LOST]
    assert lost and "no pod for node rank(s) 1" in lost[-1], h.events()
