"""The controller process: repeat `Controller.step` over every job until asked to stop.

One controller per store, enforced by a lease row renewed every step: a second controller
refuses to start while the lease is fresh, and takes over once the holder stops renewing (it
was killed). Taking over needs nothing else: pods, agents and the job's state are in the store
and the agents keep running, so the new controller's first step observes them and carries on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

from trainguard.backends.base import Backend
from trainguard.clock import Clock, SystemClock
from trainguard.controller.agents import AgentHub
from trainguard.controller.callbacks import CallbackServer, callback_app
from trainguard.controller.deps import ControllerSettings, Deps
from trainguard.controller.pods import PodMaker
from trainguard.controller.reconciler import Reconciler
from trainguard.controller.state import TERMINAL, JobPhase, JobState
from trainguard.errors import ConflictError, TrainguardError
from trainguard.liveness import process_alive
from trainguard.metrics import Metrics
from trainguard.store.records import JobRecord, Lease, PodRecord
from trainguard.store.sqlite import SqliteStore

log = logging.getLogger(__name__)
LEASE_STALE_AFTER = 10.0


class Controller:
    """Runs every job of a store through its lifecycle.

    Args:
        store: the cluster's store.
        backend: where pods run.
        hub: agent clients and statuses (HTTP by default).
        clock: time source.
        settings: timings.
        metrics: Prometheus metrics (a fresh registry by default).
        serve_callbacks: run the HTTP endpoint agents push their status to.
    """

    def __init__(
        self,
        *,
        store: SqliteStore,
        backend: Backend,
        hub: AgentHub | None = None,
        clock: Clock | None = None,
        settings: ControllerSettings | None = None,
        metrics: Metrics | None = None,
        serve_callbacks: bool = True,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store, self.backend = store, backend
        self.hub = hub or AgentHub(clock=self.clock)
        self.metrics = metrics or Metrics()
        self.deps = Deps(
            store,
            backend,
            self.hub,
            PodMaker(store=store, backend=backend),
            settings or ControllerSettings(),
        )
        self.reconciler = Reconciler(self.deps, clock=self.clock, metrics=self.metrics)
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._callbacks = CallbackServer(callback_app(store, self.hub)) if serve_callbacks else None
        self._stop = threading.Event()
        self.metrics_url: str | None = None

    def start(self, *, metrics_port: int | None = None) -> None:
        """Take the lease and start the callback and metrics endpoints.

        Raises:
            ConflictError: another live controller holds this store's lease.
        """
        current = self.store.current_lease()
        if current is not None and current.holder != self.holder and not process_alive(current.pid):
            log.info("taking over from controller pid %s, which is gone", current.pid)
            self.store.release_lease(current.holder)
        if self._callbacks is not None:
            self.deps.callback_url = self._callbacks.start()
        if metrics_port is not None:
            self.metrics.serve(metrics_port)
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        if not self._renew_lease():
            self.close()
            lease = self.store.current_lease()
            raise ConflictError(
                f"another controller (pid {lease.pid if lease else '?'}) runs for this store"
            )

    def step(self) -> dict[str, JobPhase | None]:
        """One pass over every job; returns each job's phase afterwards."""
        started = time.perf_counter()
        now = self.clock.wall()
        self.backend.step(now=now)
        phases: dict[str, JobPhase | None] = {}
        nodes = {node.name: node for node in self.backend.list_nodes()}
        records = self.store.list_jobs()
        pods = self._pods_by_job()
        self._poll_agents(records, pods)
        for record in records:
            try:
                phases[record.key] = self.reconciler.reconcile(
                    record, nodes=nodes, pods=pods.get(record.key, [])
                )
            except TrainguardError as exc:
                log.warning("job %s: step failed, retrying next step: %s", record.key, exc)
                phases[record.key] = JobState.model_validate(record.state).phase
        self.metrics.active_jobs.set(
            sum(1 for p in phases.values() if p is not None and p not in TERMINAL)
        )
        self.metrics.step_seconds.observe(time.perf_counter() - started)
        self._renew_lease()
        return phases

    def _pods_by_job(self) -> dict[str, list[PodRecord]]:
        grouped: dict[str, list[PodRecord]] = defaultdict(list)
        for pod in self.store.list_pods():
            grouped[f"{pod.namespace}/{pod.job}"].append(pod)
        return grouped

    def _poll_agents(self, records: list[JobRecord], pods: dict[str, list[PodRecord]]) -> None:
        """Refresh stale agent statuses of all jobs in one parallel fan-out."""
        tokens = {r.key: str(r.state.get("token", "")) for r in records}
        self.hub.refresh_many(
            [(pod, tokens[key]) for key, group in pods.items() if key in tokens for pod in group],
            max_age=self.deps.settings.poll_interval,
        )

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Repeat `step` until `stop` is called or ``until()`` is true."""
        interval = self.deps.settings.loop_interval
        while not self._stop.is_set():
            self.step()
            if until is not None and until():
                return
            self.hub.wakeup.wait(interval)
            self.hub.wakeup.clear()

    def stop(self) -> None:
        """Ask `run` to return after the current step."""
        self._stop.set()
        self.hub.wakeup.set()

    def close(self) -> None:
        """Release the lease and stop the endpoints (pods keep running)."""
        if self._callbacks is not None:
            self._callbacks.stop()
        self.store.release_lease(self.holder)
        self.hub.close()

    def _renew_lease(self) -> bool:
        lease = Lease(
            self.holder, os.getpid(), self.clock.wall(), self.deps.callback_url, self.metrics_url
        )
        return self.store.take_lease(lease, stale_after=LEASE_STALE_AFTER, now=self.clock.wall())
