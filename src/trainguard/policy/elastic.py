"""Elastic sizing: which node counts a job may run at, and which one to run at now.

An elastic job (``spec.elasticPolicy``, HyperPod training operator v1.2+) scales its
data-parallel width with the nodes available instead of waiting for the size it asked for. The
controller knows how many pods it could place; this module turns that into a size, so the rule
("the largest allowed size that fits, never below ``minReplicas``; grow at most once per
``scaleUpSnoozeTimeInSeconds``") is one pure function tested without pods or clocks.

Allowed sizes, as HyperPod defines them: ``replicaDiscreteValues`` when given (each within
``minReplicas..maxReplicas``), else ``minReplicas, minReplicas + replicaIncrementStep, ...`` up
to ``maxReplicas``, else every size in between. ``minReplicas`` defaults to 1 and
``maxReplicas`` to the replica spec's ``maxReplicas`` or else ``replicas``. The job's target is
the largest allowed size: it starts with what fits and grows toward it.

A resize that does not reach Running within ``scalingTimeoutInSeconds`` is abandoned
(`abandon_resize`): a grow falls back to the largest allowed size its usable pods can run, a
shrink has nothing smaller to fall back to and becomes an ordinary fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainguard.spec.job import JobSpec


@dataclass(frozen=True)
class ElasticBounds:
    """The sizes an elastic job may run at, smallest first, and its scale-up snooze."""

    sizes: tuple[int, ...]
    snooze_seconds: float
    scaling_timeout: float | None = None
    """Seconds a resize may take to reach Running (``scalingTimeoutInSeconds``); None (unset
    or 0): no limit."""

    @property
    def minimum(self) -> int:
        """The smallest size the job runs at (``minReplicas``)."""
        return self.sizes[0]

    @property
    def target(self) -> int:
        """The size the job grows toward when nodes are free."""
        return self.sizes[-1]


def elastic_bounds(spec: JobSpec) -> ElasticBounds | None:
    """The job's allowed sizes, or None when it is not elastic."""
    elastic = spec.elastic_policy
    if elastic is None:
        return None
    group = spec.replica_specs[0]
    low = elastic.min_replicas or 1
    high = elastic.max_replicas or group.max_replicas or spec.total_replicas
    if elastic.replica_discrete_values:
        sizes = sorted({v for v in elastic.replica_discrete_values if low <= v <= high})
    else:
        sizes = list(range(low, high + 1, elastic.replica_increment_step or 1))
    restart = spec.run_policy.restart_policy
    snooze = restart.scale_up_snooze_time_in_seconds if restart is not None else None
    timeout = elastic.scaling_timeout_in_seconds
    return ElasticBounds(
        tuple(sizes or [high]),
        float(snooze or 0),
        float(timeout) if timeout else None,  # 0 would abandon every resize: no limit
    )


def fitting_sizes(bounds: ElasticBounds, *, at_most: int) -> list[int]:
    """Allowed sizes no larger than ``at_most``, largest first (the order to try placing)."""
    return [size for size in reversed(bounds.sizes) if size <= at_most]


@dataclass(frozen=True)
class GrowCheck:
    """Whether a running elastic job should try to grow now, and to which sizes."""

    sizes: list[int]
    """Larger allowed sizes to try, largest first; empty when growing is not due."""
    wait_seconds: float
    """Seconds until the snooze allows growing (0 when it does now)."""


def grow_check(
    bounds: ElasticBounds, *, current: int, last_resize: float | None, now: float
) -> GrowCheck:
    """Sizes above ``current`` to try now: none before ``snooze_seconds`` after the last resize.

    Args:
        bounds: the job's allowed sizes.
        current: the size the job runs at.
        last_resize: when the job last started at a new size or restarted (epoch s), or None.
        now: the controller's clock reading.
    """
    larger = [size for size in reversed(bounds.sizes) if size > current]
    if not larger:
        return GrowCheck([], 0.0)
    if last_resize is not None:
        wait = bounds.snooze_seconds - (now - last_resize)
        if wait > 0:
            return GrowCheck([], wait)
    return GrowCheck(larger, 0.0)


@dataclass(frozen=True)
class FallBack:
    """Abandon a grow that timed out: restart at ``size``, the largest allowed size the usable
    pods can run (normally the size the job grew from)."""

    size: int


@dataclass(frozen=True)
class TreatAsFault:
    """Abandon a resize that timed out with nothing smaller to run at (a shrink, or a grow
    whose usable pods fit no allowed size): handle it as an ordinary, counted fault."""


def abandon_resize(
    bounds: ElasticBounds, *, before: int, after: int, usable: int, elapsed: float
) -> FallBack | TreatAsFault | None:
    """What to do about a resize from ``before`` to ``after`` node ranks that started
    ``elapsed`` seconds ago and has not reached Running.

    Args:
        bounds: the job's allowed sizes and its scaling timeout.
        before: the size the job ran at before the resize.
        after: the size the resize aims for.
        usable: pods of the job that run or can run workers (alive, agent ready once, on a
            healthy node); a pod that never became ready is not usable.
        elapsed: seconds since the resize's ``Scale`` restart.

    Returns:
        None while the timeout is not reached (or there is none), else the fallback.
    """
    timeout = bounds.scaling_timeout
    if timeout is None or elapsed < timeout:
        return None
    if after <= before:
        return TreatAsFault()
    smaller = fitting_sizes(bounds, at_most=min(usable, after - 1))
    return FallBack(smaller[0]) if smaller else TreatAsFault()
