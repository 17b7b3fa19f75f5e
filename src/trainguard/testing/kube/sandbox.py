"""One pod on a fake node: its directories, pod IP, container processes and their states.

The kubelet owns one `PodSandbox` per pod bound to its node and calls `sync` every loop: it
starts containers whose config resolves (retrying a ``CreateContainerConfigError`` as the kubelet
does), notices exits, restarts per ``restartPolicy`` with a doubling back-off
(``CrashLoopBackOff``), and on deletion sends SIGTERM to every container's group, then SIGKILL
once the grace period is over. It knows nothing of HTTP; the kubelet turns `status` into a
``pods/status`` write.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainguard.testing.kube.podenv import (
    ContainerConfigError,
    ObjectLookup,
    PodContext,
    container_config,
)
from trainguard.testing.kube.podstatus import ContainerState, pod_status
from trainguard.testing.kube.processes import ContainerProcess, StartError
from trainguard.testing.kube.volumes import prepare_volumes

JSON = dict[str, Any]
CONFIG_RETRY_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
MINIMUM_GRACE_SECONDS = 2  # the kubelet never kills with less (kuberuntime_container.go)


def rfc3339_now() -> str:
    """Now as the API writes times: UTC, second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodSandbox:
    """The runtime side of one pod; `sync` advances it, `status` reports it."""

    def __init__(
        self,
        pod: JSON,
        *,
        node_name: str,
        host_ip: str,
        pod_ip: str,
        pod_dir: Path,
        image_env: Mapping[str, str],
        restart_backoff_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pod = pod
        self.uid: str = pod["metadata"].get("uid", "")
        self.pod_ip, self.host_ip, self.node_name = pod_ip, host_ip, node_name
        self.pod_dir = pod_dir
        self.start_time = rfc3339_now()
        self._image_env = dict(image_env)
        self._backoff = restart_backoff_seconds
        self._clock = clock
        self._policy: str = pod["spec"].get("restartPolicy") or "Always"
        self.containers = [
            ContainerState(name=c["name"], image=c.get("image", ""))
            for c in pod["spec"]["containers"]
        ]
        self.processes: dict[str, ContainerProcess] = {}
        self._next_try: dict[str, float] = {}
        self._volumes: dict[str, Path] | None = None
        self.kill_deadline: float | None = None
        self.ip_released = False
        self.events: list[tuple[str, str, str]] = []
        """(type, reason, message) the kubelet records as Events and then clears."""

    @property
    def terminating(self) -> bool:
        return self.kill_deadline is not None

    def log_path(self, container: str) -> Path:
        return self.pod_dir / "logs" / f"{container}.log"

    def sync(self, lookup: ObjectLookup) -> None:
        """Notice exits, restart or start containers, and escalate a termination."""
        for state in self.containers:
            self._observe(state)
        if self.terminating:
            self._escalate()
            return
        for index, state in enumerate(self.containers):
            if not state.running and not state.terminated:
                self._try_start(index, state, lookup)

    def _observe(self, state: ContainerState) -> None:
        process = self.processes.get(state.name)
        if process is None or not state.running:
            return
        code = process.exit_code()
        if code is None:
            return
        del self.processes[state.name]
        process.kill_leftovers()
        state.terminate(code, now=rfc3339_now())
        if not self.terminating and self._restarts(code):
            delay = min(self._backoff * 2**state.restart_count, MAX_BACKOFF_SECONDS)
            state.restart()
            state.waiting_reason = "CrashLoopBackOff"
            state.waiting_message = (
                f"back-off {delay:g}s restarting failed container={state.name} "
                f"pod={self.pod['metadata']['name']}_{self.pod['metadata'].get('namespace')}"
                f"({self.uid})"
            )
            self._next_try[state.name] = self._clock() + delay

    def _restarts(self, exit_code: int) -> bool:
        return self._policy == "Always" or (self._policy == "OnFailure" and exit_code != 0)

    def _try_start(self, index: int, state: ContainerState, lookup: ObjectLookup) -> None:
        if self._clock() < self._next_try.get(state.name, 0.0):
            return
        self._next_try[state.name] = self._clock() + CONFIG_RETRY_SECONDS
        try:
            if self.pod["spec"].get("initContainers"):
                raise ContainerConfigError(
                    "spec.initContainers: the fake kubelet does not run them"
                )
            if self._volumes is None:
                self._volumes = prepare_volumes(self.pod, self.pod_dir, lookup)
            config = container_config(self.pod["spec"]["containers"][index], self._context(lookup))
        except ContainerConfigError as exc:
            if state.waiting_message != str(exc):
                self.events.append(("Warning", "Failed", f"Error: {exc}"))
            state.waiting_reason, state.waiting_message = "CreateContainerConfigError", str(exc)
            return
        try:
            self.processes[state.name] = ContainerProcess.start(config, self.log_path(state.name))
        except StartError as exc:
            self.events.append(("Warning", "Failed", f"Error: {exc}"))
            state.started_at = rfc3339_now()
            state.terminate(128, now=state.started_at, reason="StartError", message=str(exc))
            return
        state.started_at = rfc3339_now()
        state.waiting_reason, state.waiting_message = "", ""
        self.events.append(("Normal", "Started", f"Started container {state.name}"))

    def _context(self, lookup: ObjectLookup) -> PodContext:
        env = {**self._image_env, "HOSTNAME": self.pod["metadata"]["name"]}
        return PodContext(
            pod=self.pod,
            node_name=self.node_name,
            pod_ip=self.pod_ip,
            host_ip=self.host_ip,
            lookup=lookup,
            volume_dirs=self._volumes or {},
            image_env=env,
        )

    def terminate(self, grace_seconds: int) -> None:
        """Begin a graceful stop: SIGTERM now, SIGKILL after ``grace_seconds`` (at least 2)."""
        if self.terminating:
            return
        self.kill_deadline = self._clock() + max(grace_seconds, MINIMUM_GRACE_SECONDS)
        for process in self.processes.values():
            process.signal(signal.SIGTERM)

    def _escalate(self) -> None:
        if self.kill_deadline is not None and self._clock() >= self.kill_deadline:
            for process in self.processes.values():
                process.kill()

    def remove_volumes(self) -> None:
        """Delete the pod's volume directories (emptyDir, secret, configMap; never a hostPath),
        as the kubelet cleans a deleted pod's volumes up — node-local memory is released."""
        shutil.rmtree(self.pod_dir / "volumes", ignore_errors=True)

    @property
    def stopped(self) -> bool:
        """No container process is left."""
        return not self.processes

    def kill(self) -> None:
        """SIGKILL every container's group now (a lost machine, or the cluster's shutdown)."""
        if self.kill_deadline is None:
            self.kill_deadline = self._clock()
        for process in list(self.processes.values()):
            process.kill()
        for state in self.containers:
            self._observe(state)

    def status(self, previous: Mapping[str, Any]) -> JSON:
        """The pod's ``status`` for a ``pods/status`` write, from ``previous`` (the API's)."""
        return pod_status(
            previous,
            self.containers,
            restart_policy=self._policy,
            pod_ip=self.pod_ip,
            host_ip=self.host_ip,
            start_time=self.start_time,
            now=rfc3339_now(),
        )
