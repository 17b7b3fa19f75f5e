"""The controller's view of every agent: one client per pod, latest statuses, fan-out calls.

Statuses arrive two ways: agents push every state change to the controller's callback URL
(fast detection), and the hub polls an agent whose last status is older than ``max_age``
(the fallback that keeps working when a push is lost). Calls to many agents (``/stop`` to every
pod of a job, say) run in parallel on a small thread pool, so remediation time does not grow
with the number of pods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from trainguard.agent.client import AgentClient
from trainguard.agent.protocol import AgentStatus, StartRequest, StopRequest, UpdateRequest
from trainguard.clock import Clock, SystemClock
from trainguard.errors import TrainguardError
from trainguard.store.records import PodRecord

T = TypeVar("T")


class AgentApi(Protocol):
    """What the controller calls on an agent (`AgentClient` or a test fake)."""

    def status(self) -> AgentStatus: ...
    def start(self, request: StartRequest) -> None: ...
    def stop(self, request: StopRequest | None = None) -> None: ...
    def update(self, request: UpdateRequest) -> None: ...
    def shutdown(self) -> None: ...
    def logs(self, *, rank: int, tail: int = 100) -> list[str]: ...
    def close(self) -> None: ...


ClientFactory = Callable[[PodRecord, str], AgentApi]


def http_client_factory(pod: PodRecord, token: str) -> AgentApi:
    """An HTTP `AgentClient` for ``pod``."""
    if pod.url is None:
        raise TrainguardError(f"pod {pod.name} has no agent address yet")
    return AgentClient(pod.url, token=token)


@dataclass
class Seen:
    """The latest status of one agent, or the error of the latest attempt to get it."""

    status: AgentStatus | None
    at: float
    """When it arrived, in monotonic seconds (a cache age, so a wall-clock step cannot freeze
    polling for hours or make every status look stale at once)."""
    error: str | None = None


class AgentHub:
    """Clients, cached statuses and parallel calls for all agents of all jobs.

    Args:
        client_factory: builds the client of a pod (HTTP by default).
        clock: time source for cache ages (its monotonic clock).
        max_workers: parallel calls at most.
    """

    def __init__(
        self,
        *,
        client_factory: ClientFactory = http_client_factory,
        clock: Clock | None = None,
        max_workers: int = 32,
    ) -> None:
        self._factory = client_factory
        self._clock = clock or SystemClock()
        self._clients: dict[str, tuple[str | None, AgentApi]] = {}
        self._seen: dict[str, Seen] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="agent-call")
        self.wakeup = threading.Event()

    def close(self) -> None:
        """Close every client and the thread pool."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for _, client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, pod: PodRecord, token: str) -> AgentApi:
        """The client of ``pod`` (rebuilt when the pod's address changed)."""
        with self._lock:
            cached = self._clients.get(pod.name)
            if cached is not None and cached[0] == pod.url:
                return cached[1]
            client = self._factory(pod, token)
            if cached is not None:
                cached[1].close()
            self._clients[pod.name] = (pod.url, client)
            return client

    def seen(self, pod: str) -> Seen | None:
        """The latest status (or error) of ``pod``'s agent."""
        with self._lock:
            return self._seen.get(pod)

    def push(self, pod: str, status: AgentStatus) -> None:
        """Record a status an agent pushed, and wake the controller loop."""
        with self._lock:
            self._seen[pod] = Seen(status, self._clock.monotonic())
        self.wakeup.set()

    def forget(self, pod: str) -> None:
        """Drop the client and status of a deleted pod."""
        with self._lock:
            self._seen.pop(pod, None)
            cached = self._clients.pop(pod, None)
        if cached is not None:
            cached[1].close()

    def refresh(self, pods: Iterable[PodRecord], token: str, *, max_age: float) -> None:
        """Poll, in parallel, every agent whose status is older than ``max_age`` seconds."""
        self.refresh_many([(pod, token) for pod in pods], max_age=max_age)

    def refresh_many(self, pods: Iterable[tuple[PodRecord, str]], *, max_age: float) -> None:
        """Like `refresh` for the pods of many jobs (each with its job's token) in one fan-out."""
        now = self._clock.monotonic()
        stale = [
            (pod, token)
            for pod, token in pods
            if (s := self.seen(pod.name)) is None or now - s.at >= max_age
        ]
        results = self._fan_out(stale, lambda _pod, client: client.status())
        with self._lock:
            for pod, _ in stale:
                outcome = results[pod.name]
                if isinstance(outcome, AgentStatus):
                    self._seen[pod.name] = Seen(outcome, now)
                else:
                    previous = self._seen.get(pod.name)
                    self._seen[pod.name] = Seen(
                        previous.status if previous else None, now, str(outcome)
                    )

    def fan_out(
        self, pods: Iterable[PodRecord], token: str, call: Callable[[PodRecord, AgentApi], T]
    ) -> dict[str, T | TrainguardError]:
        """Run ``call(pod, client)`` for every pod in parallel; errors are returned, not raised."""
        return self._fan_out([(pod, token) for pod in pods], call)

    def _fan_out(
        self,
        pods: list[tuple[PodRecord, str]],
        call: Callable[[PodRecord, AgentApi], T],
    ) -> dict[str, T | TrainguardError]:
        if not pods:
            return {}

        def one(pod: PodRecord, token: str) -> T | TrainguardError:
            try:
                return call(pod, self.client(pod, token))
            except TrainguardError as exc:
                return exc

        if len(pods) == 1:
            pod, token = pods[0]
            return {pod.name: one(pod, token)}
        futures = {pod.name: self._pool.submit(one, pod, token) for pod, token in pods}
        return {name: future.result() for name, future in futures.items()}
