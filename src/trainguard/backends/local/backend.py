"""The local backend: simulated nodes on this machine, pods as supervised agent processes.

Each pod is a `shim` process (our stand-in for a container runtime) running the pod's agent
on 127.0.0.1 with a free port, in its own session, with the container's environment plus what
HyperPod's operator injects (``NNODES``, ``NPROC_PER_NODE``, pod and node names) and what our
agent needs (token, port, log dir, node-local memory dir). Pod processes survive a killed
controller; a restarted controller finds them again through the pid and start time in the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from trainguard import constants as c
from trainguard.backends.base import Backend, PodLaunch
from trainguard.backends.local.cluster import LocalCluster, LocalClusterConfig, load_config
from trainguard.backends.local.command import agent_argv
from trainguard.backends.local.mtcservers import pod_environment as mtc_pod_environment
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.errors import BackendError
from trainguard.names import safe_join
from trainguard.permissions import open_private, private_dir
from trainguard.proctree import find_worker
from trainguard.spec.k8s import Container
from trainguard.store.base import Store
from trainguard.store.records import NodeRecord, PodRecord

HOST = "127.0.0.1"
DEFAULT_GRACE = 30.0
TIMELINE_FILE = "timeline.jsonl"
"""Per pod: the agent's step/save timeline (`trainguard.agent.timeline`), read by job report."""


class LocalBackend(Backend):
    """Pods as local processes, nodes as records in the store.

    Args:
        store: the cluster's store.
        home: the cluster's state directory (pod logs live under ``home/pods``).
        config: cluster settings; read from ``home`` when omitted.
    """

    name = "local"

    def __init__(
        self, *, store: Store, home: Path, config: LocalClusterConfig | None = None
    ) -> None:
        self.store, self.home = store, home
        self.cluster = LocalCluster(store, home, config or load_config(home))
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- pods ------------------------------------------------------------------------------

    def pod_dir(self, namespace: str, job: str, pod: str) -> Path:
        """Where a pod's logs live (every name checked: a pod directory never leaves home)."""
        return safe_join(self.home / "pods", namespace, job, pod, what="pod directory")

    def create_pod(self, launch: PodLaunch, *, now: float) -> PodRecord:
        """Start the pod's shim + agent and record pid, port and start time."""
        directory = self.pod_dir(launch.namespace, launch.job, launch.pod)
        private_dir(directory / "logs")  # worker output and the agent's tee of it: 0700
        (directory / "exit.json").unlink(missing_ok=True)
        port = self.free_port(HOST)
        container = launch.container
        memory = self.cluster.job_memory(launch.node, launch.namespace, launch.job, launch.job_uid)
        private_dir(memory)
        env = self._environment(launch, port=port, directory=directory, memory=memory)
        argv = agent_argv(
            [*(container.command or []), *(container.args or [])],
            nproc_per_node=launch.nproc_per_node,
            path=env.get("PATH"),
        )
        grace = DEFAULT_GRACE
        shim = [
            sys.executable,
            "-m",
            "trainguard.backends.local.shim",
            "--pod-dir",
            str(directory),
            "--grace",
            str(grace),
            "--",
            *argv,
        ]
        with os.fdopen(open_private(directory / "pod.log", os.O_WRONLY | os.O_APPEND), "ab") as log:
            process = subprocess.Popen(
                shim,
                cwd=self._working_dir(container, launch.source_dir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[process.pid] = process
        return launch.running_record(
            pid=process.pid,
            port=port,
            now=now,
            host=HOST,
            info={"create_time": psutil.Process(process.pid).create_time(), "dir": str(directory)},
        )

    def _environment(
        self, launch: PodLaunch, *, port: int, directory: Path, memory: Path
    ) -> dict[str, str]:
        env = dict(os.environ)
        # defaults a manifest may override through its container env
        env[c.ENV_CHECKPOINT_DIR] = str(
            self.cluster.job_checkpoints(launch.namespace, launch.job, launch.job_uid)
        )
        env.update(mtc_pod_environment(self.home, launch.node))
        env.update(
            _container_env(
                launch.container, pod=launch.pod, namespace=launch.namespace, node=launch.node
            )
        )
        env.update(
            {
                c.ENV_NODE_NAME: launch.node,
                c.ENV_POD_NAME: launch.pod,
                c.ENV_JOB_NAME: launch.job,
                c.ENV_JOB_NAMESPACE: launch.namespace,
                c.ENV_JOB_UID: launch.job_uid,
                c.ENV_NNODES: str(launch.nnodes),
                c.ENV_NPROC_PER_NODE: launch.nproc_per_node,
                c.ENV_AGENT_TOKEN: launch.token,
                c.ENV_AGENT_PORT: str(port),
                c.ENV_AGENT_HOST: HOST,
                c.ENV_LOG_DIR: str(directory / "logs"),
                c.ENV_TIMELINE_FILE: str(directory / TIMELINE_FILE),
                c.ENV_SHM_DIR: str(memory),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(launch.extra_env)
        return env

    @staticmethod
    def _working_dir(container: Container, source_dir: str | None) -> str:
        base = Path(source_dir) if source_dir else Path.cwd()
        if not container.working_dir:
            return str(base)
        directory = base / container.working_dir
        if not directory.is_dir():
            raise BackendError(f"workingDir {container.working_dir} does not exist ({directory})")
        return str(directory)

    def pod_alive(self, pod: PodRecord) -> bool:
        """Whether the pod's shim runs (same pid and start time as when it was created)."""
        self.reap_exited()
        process = self._process(pod)
        if process is None:
            return False
        child = self._children.get(process.pid)
        if child is not None and child.poll() is not None:
            del self._children[process.pid]
            return False
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def pod_exit(self, pod: PodRecord) -> dict[str, object] | None:
        """The shim's record of how the pod's agent exited, if it has exited."""
        path = Path(str(pod.info.get("dir", ""))) / "exit.json"
        if not path.exists():
            return None
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded

    def pod_failure(self, pod: PodRecord) -> str | None:
        """The agent's exit code and the last line it wrote (a command not found says so)."""
        exit_info = self.pod_exit(pod)
        if exit_info is None:
            return None
        if exit_info.get("terminated"):
            return "the pod was deleted"
        code = exit_info.get("code")
        said = _last_line(Path(str(pod.info.get("dir", ""))) / "pod.log")
        return f"agent exited with code {code}" + (f": {said}" if said else "")

    def delete_pod(self, pod: PodRecord, *, grace: float) -> None:
        """SIGTERM the shim (it stops the agent and kills leftovers); SIGKILL after ``grace``."""
        process = self._process(pod)
        if process is None:
            self.reap_exited()
            return
        try:
            leftovers = process.children(recursive=True)
            process.terminate()
            _, alive = psutil.wait_procs([process], timeout=grace)
            if alive:
                for proc in [process, *leftovers, *process.children(recursive=True)]:
                    _kill(proc)
        except psutil.NoSuchProcess:
            pass
        self._reap(process.pid)

    def signal(self, pod: PodRecord, pid: int, sig: signal.Signals) -> None:
        """Signal a process of the pod (only descendants of the pod's shim may be signalled)."""
        process = self._process(pod)
        if process is None:
            raise BackendError(f"pod {pod.name} is not running")
        family = {p.pid for p in process.children(recursive=True)} | {process.pid}
        if pid not in family:
            if not _running(pid):  # a stale pid (a worker that exited), not a foreign one
                raise BackendError(f"process {pid} is not running (pod {pod.name}): it exited")
            raise BackendError(f"process {pid} does not belong to pod {pod.name}")
        os.kill(pid, sig)

    def find_worker(self, pod: PodRecord, rank: int) -> int | None:
        """The worker of global rank ``rank`` among the pod's processes (by its ``RANK``)."""
        process = self._process(pod)
        return find_worker(process, rank) if process is not None else None

    def _process(self, pod: PodRecord) -> psutil.Process | None:
        if pod.pid is None:
            return None
        try:
            process = psutil.Process(pod.pid)
            expected = pod.info.get("create_time")
            if expected is not None and abs(process.create_time() - float(expected)) > 1.0:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:  # exited; its parent never reaped it
                return None
            return process
        except psutil.NoSuchProcess:
            return None

    def reap_exited(self) -> None:
        """Reap shims of this process that have exited (an agent killed, a pod that ended).

        Without this a dead pod's shim stayed a zombie child of the controller until the
        controller exited: `_process` sees a zombie as "not running" and never waited for it.
        """
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def _reap(self, pid: int) -> None:
        child = self._children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()

    # --- nodes and cluster -----------------------------------------------------------------

    def list_nodes(self) -> list[NodeRecord]:
        """The nodes in the store."""
        return self.store.list_nodes()

    def mark_node_health(self, node: str, health: str, *, why: str) -> None:
        """Through the store, as the node health agent's sink writes it."""
        StoreNodeSink(self.store, component=c.CONTROLLER_COMPONENT).mark_health(
            node, health, why=why
        )

    def release_job(self, namespace: str, job: str, job_uid: str) -> None:
        """Delete the job's memory-tier data on every node."""
        self.cluster.release_job(namespace, job, job_uid)

    def free_port(self, host: str) -> int:
        """A currently free TCP port on ``host``."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
            return port

    def step(self, *, now: float) -> None:
        """Reap exited shims; reboot nodes whose reboot is due, killing their pods first."""
        self.reap_exited()
        for node in self.cluster.due_reboots(now=now):
            for pod in self.store.list_pods():
                if pod.node == node.name:
                    self.delete_pod(pod, grace=0)
                    pod.phase = "Failed"
                    self.store.save_pod(pod)
            self.cluster.reboot(node, now=now)

    def wait_all(self, timeout: float) -> None:
        """Reap shims this process started (tests and ``trainguard run`` at exit)."""
        deadline = time.monotonic() + timeout
        for pid in list(self._children):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                self._children[pid].wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                continue
            self._children.pop(pid, None)


def _last_line(path: Path, *, limit: int = 4096) -> str:
    """The last non-empty line of the file's last ``limit`` bytes, at most 300 characters."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - limit))
            tail = log.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(process: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.kill()


def _container_env(container: Container, *, pod: str, namespace: str, node: str) -> dict[str, str]:
    fields = {
        "metadata.name": pod,
        "metadata.namespace": namespace,
        "spec.nodeName": node,
        "status.podIP": HOST,
        "status.hostIP": HOST,
    }
    env: dict[str, str] = {}
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = var.value or ""
            continue
        path = (
            (var.value_from.get("fieldRef") or {}).get("fieldPath")
            if isinstance(var.value_from, dict)
            else None
        )
        if path not in fields:
            raise BackendError(
                f"env {var.name}: valueFrom supports fieldRef {', '.join(sorted(fields))} locally"
            )
        env[var.name] = fields[path]
    return env
