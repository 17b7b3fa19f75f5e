"""Restart escalation: process-level restart, full job restart, or give up (reference §a.2, §b.3).

HyperPod's semantics, as one pure function over the run policy, the restart history and a
clock reading:

- Every fault costs one restart against ``jobMaxRetryCount`` (restarts in total; the job fails
  when none remain). Without ``jobMaxRetryCount`` and ``restartPolicy`` a job is not restarted:
  restarts are opt-in, as on HyperPod.
- Process-level restarts (PLR: workers restarted in place, pods kept) come first. Once
  ``numRestartBeforeFullJobRestart`` PLRs happened within the sliding ``evalPeriodSeconds``
  window, the next fault escalates to a full job restart (JLR: every pod deleted and
  recreated), which opens a fresh window.
- After ``maxFullJobRestarts`` JLRs, a fault that would need another one fails the job.

A pod lost before its agent became ready (its command not found, a missing Secret) is such a
fault too (DESIGN §2: "agent/pod lost -> recreate that pod, then PLR"), so a job whose pods
cannot start uses up its budget and fails instead of recreating pods forever; its pods are
recreated after `start_backoff`, doubling like the kubelet's CrashLoopBackOff.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainguard import constants as c
from trainguard.spec.job import RunPolicy

REASON_RETRIES_EXHAUSTED = "JobMaxRetryCountExceeded"
REASON_FULL_RESTARTS_EXHAUSTED = "MaxFullJobRestartsExceeded"
REASON_NO_RESTART_POLICY = "NoRestartPolicy"
START_BACKOFF_BASE = 10.0
"""Seconds before recreating pods after the first start failure (the kubelet's 10 s)."""
START_BACKOFF_CAP = 300.0
"""The longest wait between recreations (the kubelet's 5 min)."""


@dataclass(frozen=True)
class RestartHistory:
    """What the policy needs to know about earlier restarts of the job."""

    total: int = 0
    full: int = 0
    plr_times: tuple[float, ...] = ()
    """Wall times of the process-level restarts since the last full job restart."""


@dataclass(frozen=True)
class Restart:
    """Restart the job: ``kind`` is PLR or JLR."""

    kind: str
    reason: str
    time: float
    window_start: float


@dataclass(frozen=True)
class GiveUp:
    """Fail the job: the fault cannot be remediated within the policy's budget."""

    reason: str
    message: str


def decide_restart(
    policy: RunPolicy, history: RestartHistory, *, fault_reason: str, now: float
) -> Restart | GiveUp:
    """What to do about a fault of ``fault_reason`` observed at ``now``."""
    restart = policy.restart_policy
    budget = policy.job_max_retry_count
    if budget is None and restart is None:
        return GiveUp(
            REASON_NO_RESTART_POLICY,
            f"{fault_reason}: the job sets neither jobMaxRetryCount nor restartPolicy",
        )
    if budget is not None and history.total >= budget:
        return GiveUp(
            REASON_RETRIES_EXHAUSTED,
            f"{fault_reason}: all {budget} restarts of jobMaxRetryCount used",
        )
    recent = plrs_in_window(policy, history, now)
    window_start = min(recent, default=now)
    limit = restart.num_restart_before_full_job_restart if restart else None
    if limit is None or len(recent) < limit:
        return Restart(c.RESTART_PLR, fault_reason, now, window_start)
    assert restart is not None
    if restart.max_full_job_restarts is not None and history.full >= restart.max_full_job_restarts:
        return GiveUp(
            REASON_FULL_RESTARTS_EXHAUSTED,
            f"{fault_reason}: {len(recent)} process-level restarts within "
            f"{restart.eval_period_seconds}s and all {restart.max_full_job_restarts} full job "
            "restarts used",
        )
    return Restart(c.RESTART_JLR, fault_reason, now, now)


def plrs_in_window(policy: RunPolicy, history: RestartHistory, now: float) -> list[float]:
    """Times of the PLRs inside the current ``evalPeriodSeconds`` window."""
    restart = policy.restart_policy
    if restart is None:
        return list(history.plr_times)
    return [t for t in history.plr_times if t > now - restart.eval_period_seconds]


def record(history: RestartHistory, decision: Restart) -> RestartHistory:
    """The history after executing ``decision``; a JLR starts a fresh PLR window."""
    if decision.kind == c.RESTART_JLR:
        return RestartHistory(history.total + 1, history.full + 1, ())
    return RestartHistory(history.total + 1, history.full, (*history.plr_times, decision.time))


def start_backoff(failures: int) -> float:
    """Seconds to wait before recreating pods after ``failures`` start failures in a row."""
    if failures <= 0:
        return 0.0
    doublings = min(failures - 1, 32)
    return min(START_BACKOFF_CAP, START_BACKOFF_BASE * float(2**doublings))
