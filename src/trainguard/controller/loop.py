"""The controller process: repeat `Controller.step` over every job until asked to stop.

One controller per store, enforced by a lease (`trainguard.controller.lease`): renewed at the
start of every step and from a background thread; a second controller refuses to start while
the holder renews, and takes over once it stops (killed, or stalled for longer than the lease).
Taking over needs nothing else: pods, agents and the job's state are in the store and the agents
keep running, so the new controller's first step observes them and carries on. A controller
that finds its lease taken raises `LeaseLostError` out of `step`/`run` and must exit: its store
writes and pod launches are fenced from that moment on.

One job never takes the controller down: an exception that is not a `TrainguardError` raised
while reconciling a job fails that job (`trainguard.controller.isolation`) and the step goes on
with the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection

from trainguard import constants as c
from trainguard.backends.base import Backend
from trainguard.backends.gate import AdmissionGate, OpenGate
from trainguard.clock import Clock, SystemClock
from trainguard.controller.agents import AgentHub
from trainguard.controller.callbacks import CallbackServer, callback_app
from trainguard.controller.deps import ControllerSettings, Deps
from trainguard.controller.fault_requests import FaultInjector
from trainguard.controller.isolation import fail_unexpected
from trainguard.controller.lease import Leadership, new_holder_name
from trainguard.controller.pods import PodMaker
from trainguard.controller.reconciler import Reconciler
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.errors import ConflictError, CorruptRecord, LeaseLostError, TrainguardError
from trainguard.metrics import Metrics
from trainguard.store.base import Store
from trainguard.store.records import JobRecord, NodeRecord, PodRecord

log = logging.getLogger(__name__)
ACQUIRE_POLL = 0.2
"""Seconds between looks at the lease while `Controller.start` waits to take it over."""


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
        gate: whether a job may have pods now (a queue manager; none: every job may).
    """

    def __init__(
        self,
        *,
        store: Store,
        backend: Backend,
        hub: AgentHub | None = None,
        clock: Clock | None = None,
        settings: ControllerSettings | None = None,
        metrics: Metrics | None = None,
        serve_callbacks: bool = True,
        gate: AdmissionGate | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store, self.backend = store, backend
        self.hub = hub or AgentHub(clock=self.clock)
        self.metrics = metrics or Metrics()
        settings = settings or ControllerSettings()
        self.holder = new_holder_name()
        self.leadership = Leadership(
            store=store, clock=self.clock, holder=self.holder, duration=settings.lease_duration
        )
        maker = PodMaker(store=store, backend=backend, guard=self.leadership.check)
        self.deps = Deps(store, backend, self.hub, maker, settings, gate=gate or OpenGate())
        self.reconciler = Reconciler(self.deps, clock=self.clock, metrics=self.metrics)
        self.injector = FaultInjector(store=store, backend=backend, hub=self.hub, clock=self.clock)
        self._failed_logged: set[str] = set()
        self.failed_keys: set[str] = set()
        """Jobs whose last step raised a `TrainguardError` (retried; the operator backs off)."""
        self._callbacks = (
            CallbackServer(
                callback_app(store, self.hub),
                host=settings.callback_host,
                port=settings.callback_port,
                advertise=settings.callback_advertise,
            )
            if serve_callbacks
            else None
        )
        self._stop = threading.Event()
        self.metrics_url: str | None = None

    def start(self, *, metrics_port: int | None = None, wait: float = 0.0) -> None:
        """Take the lease, start renewing it, and start the callback and metrics endpoints.

        Args:
            metrics_port: serve ``/metrics`` on this port.
            wait: seconds to watch a live holder that does not renew before giving up; a
                holder silent for the lease's duration is taken over.

        Raises:
            ConflictError: another live controller holds this store's lease and renews it.
        """
        if self._callbacks is not None:
            self.deps.callback_url = self._callbacks.start()
        if metrics_port is not None:
            self.metrics.serve(metrics_port)
            self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.leadership.callback_url, self.leadership.metrics_url = (
            self.deps.callback_url, self.metrics_url
        )  # fmt: skip
        try:
            self._acquire(wait)
        except ConflictError:
            self.close()
            raise
        self.leadership.start_renewing(self.hub.wakeup)

    def _acquire(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while not self.leadership.try_acquire():
            if time.monotonic() >= deadline:
                lease = self.store.current_lease()
                pid = lease.pid if lease else "?"
                raise ConflictError(f"another controller (pid {pid}) runs for this store")
            time.sleep(ACQUIRE_POLL)

    def step(self, only: Collection[str] | None = None) -> dict[str, JobPhase | None]:
        """One pass over every job (or the jobs whose keys are in ``only``); returns each
        stepped job's phase afterwards. Jobs whose step failed are in `failed_keys` until
        the next step.

        Raises:
            LeaseLostError: another controller took the lease; this one must stop.
            ConflictError: this controller never held the lease and another one does.
        """
        self._lead()
        started = time.perf_counter()
        self.failed_keys = set()
        self.backend.step(now=self.clock.wall())
        nodes = {node.name: node for node in self.backend.list_nodes()}
        records = self.store.list_jobs()
        if only is not None:
            wanted = set(only)
            records = [r for r in records if r.key in wanted]
        pods = self._pods_by_job()
        self._poll_agents(records, pods)
        phases = {r.key: self._reconcile(r, nodes, pods.get(r.key, [])) for r in records}
        self._inject_faults([r for r in records if phases[r.key] is not None])
        self.metrics.active_jobs(
            sum(1 for p in phases.values() if p is not None and p not in TERMINAL)
        )
        self.metrics.node_health(
            {name: node.labels.get(c.LABEL_NODE_HEALTH, "") for name, node in nodes.items()}
        )
        self.metrics.controller_step(time.perf_counter() - started)
        return phases

    def _lead(self) -> None:
        if self.leadership.held or self.leadership.lost.is_set():
            self.leadership.renew()
        elif not self.leadership.try_acquire():
            raise ConflictError("another controller holds this store's lease")

    def _reconcile(
        self, record: JobRecord, nodes: dict[str, NodeRecord], pods: list[PodRecord]
    ) -> JobPhase | None:
        """Step one job; its failures stay its own (a lost lease ends the whole step)."""
        try:
            return self.reconciler.reconcile(record, nodes=nodes, pods=pods)
        except LeaseLostError:
            raise
        except TrainguardError as exc:
            log.warning("job %s: step failed, retrying next step: %s", record.key, exc)
            self.failed_keys.add(record.key)
            return record.state.phase
        except Exception as exc:
            if record.uid not in self._failed_logged:
                self._failed_logged.add(record.uid)
                log.exception("job %s: unexpected error while reconciling; failing it", record.key)
            return fail_unexpected(self.reconciler, record, exc)

    def _inject_faults(self, records: list[JobRecord]) -> None:
        """Requested faults, beside the reconcile step; their failures never stop the step."""
        try:
            self.injector.step(records)
        except LeaseLostError:
            raise
        except (TrainguardError, CorruptRecord) as exc:
            log.warning("fault injection failed, retrying next step: %s", exc)

    def _pods_by_job(self) -> dict[str, list[PodRecord]]:
        grouped: dict[str, list[PodRecord]] = defaultdict(list)
        for pod in self.store.list_pods():
            grouped[f"{pod.namespace}/{pod.job}"].append(pod)
        return grouped

    def _poll_agents(self, records: list[JobRecord], pods: dict[str, list[PodRecord]]) -> None:
        """Refresh stale agent statuses of all jobs in one parallel fan-out."""
        tokens = {r.key: r.state.token for r in records}
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
        """Release the lease (if still ours) and stop the endpoints (pods keep running)."""
        if self._callbacks is not None:
            self._callbacks.stop()
        self.leadership.release()
        self.hub.close()
