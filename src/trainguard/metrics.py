"""Prometheus metrics of the controller (DESIGN §6), one typed method per metric.

HyperPod's operator names (prefix ``hyperpod_training_operator``) so existing dashboards work,
plus trainguard's own. Each `Metrics` owns a registry, so several controllers in one process
(tests) never collide on the global one.

A metric is observed by calling its method (``metrics.job_restarted(restart_type=...)``), never
by a name string: the controller used to queue ``"restarted:PLR"`` strings that an if-chain
split and dispatched, and a misspelt name was dropped without a word. Now a wrong name or a
wrong argument is an attribute or type error that mypy reports. Reconcile steps queue bound
calls (`Observation`, see `JobContext.metric`) that the reconciler applies only after the
step's status write succeeded (STYLE rule 5).

Agents report running totals (saves finished, lines evaluated, a resume per start), read again
at every poll; `Tally` turns them into increments once each, so a status read twice or a step
whose write failed and is repeated never counts anything twice.

prometheus_client exports a ``*_created`` series (a Unix timestamp) next to every counter and
histogram; it doubles the series count, has no counterpart in HyperPod's operator, and shows up
as a meaningless huge number on dashboards, so it is switched off for the whole process when
this module is imported (`disable_created_metrics` is process-wide in prometheus_client).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from trainguard.constants import RestartType

PREFIX = "hyperpod_training_operator"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
STALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
"""Seconds a training loop waits for a save: milliseconds (memory tier) up to minutes."""
RESTORE_TIERS = frozenset({"memory", "peer", "durable"})
"""Label values of ``tier``; anything else an agent reports is counted as ``unknown``, so an
agent cannot grow the label set without bound."""

disable_created_metrics()  # type: ignore[no-untyped-call]

Observation = Callable[["Metrics"], None]
"""A metric call bound to its arguments, queued by a reconcile step and applied after its write."""


class Tally:
    """Running totals per job and source (an agent process), turned into increments."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, int]] = {}

    def new(self, job: str, source: str, total: int) -> int:
        """How much of ``total`` was not counted yet; remembers ``total``.

        A total below the one seen means the source started counting afresh (an agent reset
        its counters at a new start): all of it is new.
        """
        seen = self._seen.setdefault(job, {})
        before = seen.get(source, 0)
        seen[source] = total
        return total - before if total >= before else total

    def forget(self, job: str) -> None:
        """Drop a deleted job's totals."""
        self._seen.pop(job, None)


class Metrics:
    """The controller's metrics; each public method observes one metric."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._tally = Tally()
        r = self.registry
        self._created = Counter(f"{PREFIX}_jobs_created", "Jobs created.", registry=r)
        self._deleted = Counter(f"{PREFIX}_jobs_deleted", "Jobs deleted.", registry=r)
        self._successful = Counter(f"{PREFIX}_jobs_successful", "Jobs completed.", registry=r)
        self._failed = Counter(f"{PREFIX}_jobs_failed", "Jobs failed.", registry=r)
        self._restarted = Counter(
            f"{PREFIX}_jobs_restarted", "Job restarts.", ["restart_type"], registry=r
        )
        self._restart_latency = Histogram(
            f"{PREFIX}_jobs_restart_latency",
            "Seconds from fault detection until every worker runs again.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._fault_detection_latency = Histogram(
            f"{PREFIX}_jobs_fault_detection_latency",
            "Seconds from a fault until the controller acted on it.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._step_seconds = Histogram(
            "trainguard_controller_step_seconds", "Duration of one controller step.", registry=r
        )
        self._active_jobs = Gauge("trainguard_active_jobs", "Jobs not finished.", registry=r)
        self._save_failures = Counter(
            "trainguard_checkpoint_save_failures",
            "Checkpoint saves that failed on a worker (all jobs, all ranks).",
            registry=r,
        )
        self._save_stall = Histogram(
            "trainguard_checkpoint_save_stall_seconds",
            "Seconds a training loop was blocked by one checkpoint save (per rank and save).",
            buckets=STALL_BUCKETS,
            registry=r,
        )
        self._restores = Counter(
            "trainguard_checkpoint_restores",
            "Checkpoint restores after a (re)start, per pod, by the tier restored from.",
            ["tier"],
            registry=r,
        )
        self._restore_seconds = Histogram(
            "trainguard_checkpoint_restore_seconds",
            "Seconds one pod's workers took to restore a checkpoint, by tier.",
            ["tier"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._rule_evaluations = Counter(
            "trainguard_log_rule_evaluations",
            "Log line parts the agents' log rules evaluated.",
            registry=r,
        )
        self._rule_lines_dropped = Counter(
            "trainguard_log_rule_lines_dropped",
            "Log line parts the rules never saw: dropped because evaluation fell behind.",
            registry=r,
        )
        self._goodput = Gauge(
            "trainguard_job_goodput",
            "Useful training time / wall time of a job (trainguard.policy.goodput).",
            ["job"],
            registry=r,
        )
        self._full_restarts_left = Gauge(
            "trainguard_job_full_restarts_remaining",
            "Full job restarts a job may still take (maxFullJobRestarts minus those taken).",
            ["job"],
            registry=r,
        )
        self._faults = Counter(
            "trainguard_faults_detected",
            "Faults the controller acted on, by HyperPod's event reason.",
            ["reason"],
            registry=r,
        )
        self._node_health = Gauge(
            "trainguard_node_health_status",
            "1 for each node's current sagemaker.amazonaws.com/node-health-status value.",
            ["node", "status"],
            registry=r,
        )

    # --- job lifecycle (HyperPod's names) ----------------------------------------------------

    def job_created(self) -> None:
        """A job was seen for the first time."""
        self._created.inc()

    def job_deleted(self) -> None:
        """A job was removed."""
        self._deleted.inc()

    def job_succeeded(self) -> None:
        """A job completed."""
        self._successful.inc()

    def job_failed(self) -> None:
        """A job failed."""
        self._failed.inc()

    def job_restarted(self, *, restart_type: RestartType) -> None:
        """A job was restarted (process level or full job)."""
        self._restarted.labels(restart_type=restart_type.value).inc()

    def restart_latency(self, seconds: float) -> None:
        """A restart took ``seconds`` from fault detection until every worker ran again."""
        self._restart_latency.observe(seconds)

    def fault_detection_latency(self, seconds: float) -> None:
        """The controller acted on a fault ``seconds`` after it happened."""
        self._fault_detection_latency.observe(seconds)

    # --- the controller itself ---------------------------------------------------------------

    def controller_step(self, seconds: float) -> None:
        """One controller step over every job took ``seconds``."""
        self._step_seconds.observe(seconds)

    def active_jobs(self, count: int) -> None:
        """``count`` jobs are not finished."""
        self._active_jobs.set(count)

    def job_goodput(self, job: str, goodput: float) -> None:
        """Job ``job`` (``namespace/name``) has ``goodput`` so far."""
        self._goodput.labels(job=job).set(goodput)

    def job_full_restarts_remaining(self, job: str, remaining: int) -> None:
        """Job ``job`` (``namespace/name``) may take ``remaining`` more full restarts."""
        self._full_restarts_left.labels(job=job).set(remaining)

    def fault_detected(self, reason: str) -> None:
        """The controller acted on a fault of ``reason`` (``NodeFault``, ``WorkerCrash``,
        ``LogStateHanging_<rule>``, ...)."""
        self._faults.labels(reason=reason).inc()

    def node_health(self, statuses: Mapping[str, str]) -> None:
        """Each node's health label now (``node -> status``); nodes gone are dropped."""
        self._node_health.clear()
        for node, status in statuses.items():
            self._node_health.labels(node=node, status=status).set(1)

    # --- what the agents report --------------------------------------------------------------

    def checkpoint_save_failures(self, count: int) -> None:
        """``count`` more checkpoint saves failed on workers."""
        self._save_failures.inc(count)

    def checkpoint_save_stalls(
        self, *, job: str, agent: str, saves: int, recent: Sequence[float]
    ) -> None:
        """An agent finished ``saves`` saves in all; ``recent`` are the newest saves' stalls.

        Args:
            job: the job's key.
            agent: the reporting agent process (``pod@pid``).
            saves: saves that agent saw finish since it began.
            recent: stall seconds of its newest saves, oldest first (the new ones are observed;
                saves older than the list were missed between two polls and are not).
        """
        new = self._tally.new(job, f"save:{agent}", saves)
        for seconds in list(recent)[-new:] if new > 0 else []:
            self._save_stall.observe(max(0.0, seconds))

    def checkpoint_restored(
        self, *, job: str, agent: str, tier: str, seconds: float | None
    ) -> None:
        """The workers of one agent start (``agent``: ``pod@pid@faultCount``) restored a
        checkpoint from ``tier`` in ``seconds``; counted once per agent start."""
        if self._tally.new(job, f"restore:{agent}", 1) <= 0:
            return
        label = tier if tier in RESTORE_TIERS else "unknown"
        self._restores.labels(tier=label).inc()
        if seconds is not None:
            self._restore_seconds.labels(tier=label).observe(max(0.0, seconds))

    def log_rule_lines(self, *, job: str, agent: str, evaluated: int, dropped: int) -> None:
        """The log rules of one agent start (``pod@pid@faultCount``) evaluated ``evaluated`` line
        parts and dropped ``dropped`` in all."""
        self._rule_evaluations.inc(self._tally.new(job, f"evaluated:{agent}", evaluated))
        self._rule_lines_dropped.inc(self._tally.new(job, f"dropped:{agent}", dropped))

    # --- housekeeping ------------------------------------------------------------------------

    def forget_job(self, key: str) -> None:
        """Drop a deleted job's per-job series and totals (``namespace/name``)."""
        self._tally.forget(key)
        for per_job in (self._goodput, self._full_restarts_left):
            with contextlib.suppress(KeyError):
                per_job.remove(key)

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Serve ``/metrics`` on ``host:port`` from a background thread; the server (to stop)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
