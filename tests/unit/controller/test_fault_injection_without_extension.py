"""Fault injection against agents that report no ``trainguard`` status object (HyperPod's):
the workers are found through the pods' process trees (`Backend.find_worker`)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from trainguard.agent.protocol import AgentState, AgentStatus, TrainguardStatus
from trainguard.controller.context import PodView
from trainguard.controller.fault_injection import inject, worker_location
from trainguard.errors import UsageError
from trainguard.spec.faults import parse_fault
from trainguard.store.records import PodRecord
from trainguard.store.sqlite import SqliteStore
from trainguard.testing.agents import FakeBackend


class TreeBackend(FakeBackend):
    """A fake backend whose pods' process trees hold the given ``{pod: {rank: pid}}``."""

    def __init__(self, trees: dict[str, dict[int, int]], directory: Path) -> None:
        super().__init__(SqliteStore(directory / "state.db"))
        self.trees = trees
        self.looked_into: list[str] = []

    def find_worker(self, pod: PodRecord, rank: int) -> int | None:
        self.looked_into.append(pod.name)
        return self.trees.get(pod.name, {}).get(rank)


def pod(name: str, node_rank: int, *, worker_pids: list[int] | None = None) -> PodView:
    extra = TrainguardStatus(worker_pids=worker_pids) if worker_pids is not None else None
    status = AgentStatus(status=AgentState.RUNNING, trainguard=extra)
    record = PodRecord("default", name, "train", f"node-{node_rank}", "worker", node_rank)
    return PodView(record=record, alive=True, status=status)


def test_a_hyperpod_agent_s_worker_is_found_in_its_pod_s_process_tree(tmp_path: Path) -> None:
    backend = TreeBackend({"p1": {2: 4242}}, tmp_path)
    pods = [pod("p0", 0), pod("p1", 1)]
    found, pid = worker_location(pods, 2, backend)
    assert (found.name, pid) == ("p1", 4242)
    message = inject(parse_fault("hang-worker:rank=2"), pods, backend=backend)
    assert backend.signals == [("p1", 4242, signal.SIGSTOP)] and "pid 4242" in message


def test_reported_worker_pids_win_and_skip_the_process_tree(tmp_path: Path) -> None:
    backend = TreeBackend({"p1": {2: 4242}}, tmp_path)
    pods = [pod("p0", 0, worker_pids=[10, 11]), pod("p1", 1, worker_pids=[12, 13])]
    assert worker_location(pods, 2, backend)[1] == 12
    assert backend.looked_into == []


def test_a_rank_no_process_tree_holds_is_a_usage_error(tmp_path: Path) -> None:
    backend = TreeBackend({}, tmp_path)
    with pytest.raises(UsageError, match="no running worker has rank 7"):
        worker_location([pod("p0", 0)], 7, backend)
