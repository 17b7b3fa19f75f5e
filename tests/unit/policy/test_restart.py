"""Restart escalation over HyperPod's run-policy fields, with plain numbers for time."""

from __future__ import annotations

from typing import Any

import pytest

from trainguard.policy.restart import (
    REASON_FULL_RESTARTS_EXHAUSTED,
    REASON_NO_RESTART_POLICY,
    REASON_RETRIES_EXHAUSTED,
    GiveUp,
    Restart,
    RestartHistory,
    decide_restart,
    record,
)
from trainguard.spec.job import RunPolicy


def policy(**fields: Any) -> RunPolicy:
    return RunPolicy.model_validate(fields)


HPTO = policy(
    jobMaxRetryCount=10,
    restartPolicy={
        "numRestartBeforeFullJobRestart": 3,
        "evalPeriodSeconds": 600,
        "maxFullJobRestarts": 1,
    },
)


def run_faults(run_policy: RunPolicy, times: list[float]) -> list[str]:
    history, kinds = RestartHistory(), []
    for now in times:
        decision = decide_restart(run_policy, history, fault_reason="WorkerCrash", now=now)
        if isinstance(decision, GiveUp):
            kinds.append(decision.reason)
            break
        kinds.append(decision.kind)
        history = record(history, decision)
    return kinds


def test_hpto_sample_escalates_after_three_plrs_then_fails() -> None:
    assert run_faults(HPTO, [10, 20, 30, 40, 50, 60, 70, 80]) == [
        "PLR",
        "PLR",
        "PLR",
        "JLR",
        "PLR",
        "PLR",
        "PLR",
        REASON_FULL_RESTARTS_EXHAUSTED,
    ]


def test_window_slides_so_spread_out_faults_never_escalate() -> None:
    assert run_faults(HPTO, [0, 700, 1400, 2100, 2800]) == ["PLR"] * 5


def test_total_budget_fails_the_job() -> None:
    assert run_faults(policy(jobMaxRetryCount=2), [1, 2, 3]) == [
        "PLR",
        "PLR",
        REASON_RETRIES_EXHAUSTED,
    ]


def test_zero_plrs_before_full_restart_means_always_jlr() -> None:
    run_policy = policy(
        restartPolicy={"numRestartBeforeFullJobRestart": 0, "evalPeriodSeconds": 60}
    )
    assert run_faults(run_policy, [1, 2, 3]) == ["JLR", "JLR", "JLR"]


def test_restarts_are_opt_in() -> None:
    decision = decide_restart(RunPolicy(), RestartHistory(), fault_reason="WorkerCrash", now=5)
    assert isinstance(decision, GiveUp)
    assert decision.reason == REASON_NO_RESTART_POLICY


def test_window_start_is_oldest_plr_in_window() -> None:
    history = RestartHistory(total=2, full=0, plr_times=(100.0, 500.0))
    decision = decide_restart(HPTO, history, fault_reason="NodeFault", now=750)
    assert isinstance(decision, Restart)
    assert decision.window_start == 500.0
    assert decision.kind == "PLR"


@pytest.mark.parametrize("reason", ["WorkerCrash", "NodeFault", "LogStateHanging_JobStart"])
def test_reason_is_carried(reason: str) -> None:
    decision = decide_restart(HPTO, RestartHistory(), fault_reason=reason, now=1)
    assert isinstance(decision, Restart) and decision.reason == reason
