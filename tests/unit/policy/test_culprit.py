"""Which rank of a stalled job is the culprit: a table of observed facts and the answer."""

from __future__ import annotations

import pytest

from trainguard.policy.culprit import (
    Culprit,
    CulpritLimits,
    RankFacts,
    UnknownCulprit,
    find_culprit,
)

WAITING = {"state": "S", "state_for": 20.0, "cpu_idle_for": 0.1, "step": 30}


def job(**by_rank: dict[str, object]) -> list[RankFacts]:
    """Four ranks on two pods (two per pod), all waiting in a collective unless overridden."""
    facts = []
    for rank in range(4):
        node = rank // 2
        fields = WAITING | by_rank.get(f"r{rank}", {})
        facts.append(RankFacts(rank=rank, pod=f"job-pods-{node}", node=f"node-{node}", **fields))  # type: ignore[arg-type]
    return facts


CASES = [
    ("stopped rank", job(r2={"state": "T"}), [2], "stopped"),
    ("tracing-stopped rank", job(r1={"state": "t"}), [1], "stopped"),
    ("D-state rank", job(r3={"state": "D"}), [3], "in uninterruptible sleep"),
    ("dead rank (process gone)", job(r0={"state": None}), [0], "dead"),
    ("zombie rank", job(r2={"state": "Z"}), [2], "dead"),
    ("dead outranks stopped", job(r1={"state": "T"}, r3={"state": None}), [3], "dead"),
    ("stale step, others equal", job(r1={"step": 20}), [1], "behind the others' step"),
    (
        "CPU stands still while the others poll",
        job(r2={"cpu_idle_for": 18.0}),
        [2],
        "not using CPU while the others do",
    ),
    (
        "running rank stuck alone",
        job(r0={"state": "R", "step": 10}),
        [0],
        "behind the others' step",
    ),
]


@pytest.mark.parametrize(
    ("facts", "ranks", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_culprit_table(facts: list[RankFacts], ranks: list[int], cause: str) -> None:
    found = find_culprit(facts, complete=True)
    assert isinstance(found, Culprit), found
    assert (found.rank_list, found.cause) == (ranks, cause)
    assert found.pods == [f"job-pods-{r // 2}" for r in ranks]
    assert found.nodes == [f"node-{r // 2}" for r in ranks]


UNKNOWN = [
    ("all ranks equal", job()),
    ("every rank's CPU stands still", job(**{f"r{r}": {"cpu_idle_for": 30.0} for r in range(4)})),
    ("steps not reported yet", job(r1={"step": None})),
    ("D only for a moment (a disk read)", job(r2={"state": "D", "state_for": 0.2})),
    ("stopped only for a moment", job(r2={"state": "T", "state_for": 0.5})),
    ("no facts at all", []),
]


@pytest.mark.parametrize("facts", [c[1] for c in UNKNOWN], ids=[c[0] for c in UNKNOWN])
def test_no_rank_stands_out_is_unknown(facts: list[RankFacts]) -> None:
    assert isinstance(find_culprit(facts, complete=True), UnknownCulprit)


def test_comparisons_need_every_rank() -> None:
    """A lagging step among the ranks reported proves nothing when some ranks are missing."""
    partial = job(r1={"step": 20})[:2]
    assert isinstance(find_culprit(partial, complete=False), UnknownCulprit)
    stopped = job(r1={"state": "T"})[:2]
    found = find_culprit(stopped, complete=False)
    assert isinstance(found, Culprit) and found.rank_list == [1]


def test_several_stopped_ranks_are_all_named() -> None:
    found = find_culprit(job(r1={"state": "T"}, r2={"state": "T"}), complete=True)
    assert isinstance(found, Culprit)
    assert (found.rank_list, found.pods, found.nodes) == (
        [1, 2],
        ["job-pods-0", "job-pods-1"],
        ["node-0", "node-1"],
    )


def test_limits_set_how_long_a_state_must_last() -> None:
    facts = job(r2={"state": "D", "state_for": 2.0})
    assert isinstance(find_culprit(facts, complete=True), UnknownCulprit)
    found = find_culprit(facts, complete=True, limits=CulpritLimits(stuck_after=1.0))
    assert isinstance(found, Culprit) and found.rank_list == [2]
