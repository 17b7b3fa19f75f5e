"""``trainguard controller`` and ``trainguard cluster up|down|status``.

``controller`` runs the controller in the foreground (what a Deployment does on Kubernetes)
and exits non-zero when it loses its lease; ``cluster up`` creates the simulated nodes and
starts a controller in the background — and says it runs only once that process holds the
lease and has kept it through a renewal, so a controller that dies at start is reported with
its log, not as running; ``cluster down`` deletes every job and stops every controller
process of the cluster (`trainguard.cli.controllers`), not only the lease holder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from types import FrameType
from typing import Annotated, Literal

import typer

from trainguard.backends.local.cluster import LocalClusterConfig, load_config, save_config
from trainguard.backends.local.daemons import (
    StartedProcess,
    start_controller,
    start_health_agents,
    stop_health_agents,
)
from trainguard.backends.local.mtcservers import stop_mtc_servers
from trainguard.cli import console, controllers
from trainguard.cli.checkpoint import MtcServersFlag, start_node_servers
from trainguard.cli.console import handle_errors
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.lease import LEASE_DURATION
from trainguard.controller.loop import Controller

cluster_app = typer.Typer(help="Start and stop the local cluster.", no_args_is_help=True)
START_TIMEOUT = 30.0
"""Seconds ``cluster up`` waits for its controller to hold the lease through one renewal."""
LOG_TAIL_LINES = 20
"""Lines of ``controller.log`` ``cluster up`` prints when the controller died at start."""


def controller(
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve /metrics here.")
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", help="Create nodes up to this count.")
    ] = None,
    lease_seconds: Annotated[
        float,
        typer.Option("--lease-seconds", min=1.0, help="Renew the lease within this many seconds."),
    ] = LEASE_DURATION,
) -> None:
    """Run the controller in the foreground until SIGTERM or Ctrl-C (pods keep running).

    Exits 1 when another controller holds the lease, or took it over from this one.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cluster = open_cluster()
    entry = controllers.register(cluster.home)
    try:
        _run_controller(cluster, metrics_port=metrics_port, nodes=nodes, lease=lease_seconds)
    finally:
        controllers.unregister(entry)


def _run_controller(
    cluster: LocalCluster, *, metrics_port: int | None, nodes: int | None, lease: float
) -> None:
    backend = cluster.backend()
    if nodes is not None:
        backend.cluster.ensure_nodes(nodes, now=time.time())
    settings = ControllerSettings(lease_duration=lease)
    ctrl = Controller(store=cluster.store, backend=backend, settings=settings)
    ctrl.start(metrics_port=metrics_port, wait=2 * lease)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        ctrl.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.err.print(
        f"controller running for {cluster.home} (pid {os.getpid()}, "
        f"callbacks {ctrl.deps.callback_url}, metrics {ctrl.metrics_url or 'off'})",
        markup=False,
    )
    try:
        ctrl.run()
    finally:
        ctrl.close()


@cluster_app.command("up")
@handle_errors
def up(
    *,
    nodes: Annotated[int, typer.Option("--nodes", help="Simulated nodes.")] = 3,
    node_recovery: Annotated[
        str, typer.Option("--node-recovery", help="Automatic or None.")
    ] = "Automatic",
    reboot_seconds: Annotated[
        float, typer.Option("--reboot-seconds", help="Simulated reboot time.")
    ] = 5.0,
    instance_type: Annotated[str, typer.Option("--instance-type")] = "ml.local.cpu",
    metrics_port: Annotated[int | None, typer.Option("--metrics-port")] = None,
    health_agents: Annotated[
        bool, typer.Option("--health-agents", help="Start a health agent per node.")
    ] = False,
    mtc: MtcServersFlag = None,
) -> None:
    """Create nodes and start a controller in the background."""
    if node_recovery not in ("Automatic", "None"):
        console.fail("--node-recovery must be Automatic or None")
    cluster = open_cluster()
    recovery: Literal["Automatic", "None"] = "Automatic" if node_recovery == "Automatic" else "None"
    config = load_config(cluster.home).model_copy(
        update={
            "node_recovery": recovery,
            "reboot_seconds": reboot_seconds,
            "instance_type": instance_type,
        }
    )
    save_config(cluster.home, LocalClusterConfig.model_validate(config.model_dump()))
    created = cluster.backend().cluster.ensure_nodes(nodes, now=time.time())
    if health_agents:
        stop_health_agents(cluster.home)
        start_health_agents(cluster.home, [n.name for n in created])
    if mtc is False and stop_mtc_servers(cluster.home):  # none, also none left from before
        console.out.print("MTC servers stopped (--no-mtc)", markup=False)
    nodes_up = [n.name for n in created]
    if servers := start_node_servers(cluster.home, cluster.backend().cluster, nodes_up, flag=mtc):
        console.out.print(f"MTC servers: {', '.join(s.url for s in servers)}", markup=False)
    if cluster.live_controller() is not None:
        console.out.print("controller already running", markup=False)
        return
    process = start_controller(cluster.home, metrics_port=metrics_port)
    problem = _wait_until_leading(cluster, process)
    if problem is not None:
        for line in process.log_tail(LOG_TAIL_LINES):
            console.err.print(line, markup=False, highlight=False)
        console.fail(f"{problem}; see {process.log}", console.EXIT_FAILED)
    console.out.print(
        f"cluster up: {nodes} node(s), controller running ({cluster.home})", markup=False
    )


def _wait_until_leading(cluster: LocalCluster, process: StartedProcess) -> str | None:
    """None once ``process`` holds the lease and renewed it once; else what went wrong."""
    deadline = time.monotonic() + START_TIMEOUT
    first: int | None = None
    while time.monotonic() < deadline:
        code = process.exit_code()
        if code is not None:
            return f"the controller exited at start (exit code {code})"
        lease = cluster.store.current_lease()
        if lease is not None and lease.pid == process.pid:
            first = lease.renewals if first is None else first
            if lease.renewals > first:
                return None
        time.sleep(0.2)
    with contextlib.suppress(OSError):
        os.kill(process.pid, signal.SIGTERM)
    return f"the controller did not take the lease within {START_TIMEOUT:g} s"


@cluster_app.command("down")
@handle_errors
def down(timeout: Annotated[float, typer.Option("--timeout")] = 120.0) -> None:
    """Delete every job, stop the controller and wipe node memory."""
    cluster = open_cluster()
    for record in cluster.store.list_jobs():
        cluster.store.request_deletion(record.namespace, record.name)
    lease = cluster.live_controller()
    deadline = time.monotonic() + timeout
    while lease is not None and cluster.store.list_jobs() and time.monotonic() < deadline:
        time.sleep(0.2)
    if lease is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(lease.pid, signal.SIGCONT)
            os.kill(lease.pid, signal.SIGTERM)
    stopped = controllers.stop_all(cluster.home)
    backend = cluster.backend()
    for record in cluster.store.list_jobs():
        for pod in cluster.store.list_pods(record.namespace, record.name):
            backend.delete_pod(pod, grace=10)
        backend.release_job(record.namespace, record.name, record.uid)
        cluster.store.remove_job(record.namespace, record.name)
    stop_mtc_servers(cluster.home)
    backend.cluster.teardown()
    stop_health_agents(cluster.home)
    if lease is not None and lease.pid not in stopped:
        stopped.append(lease.pid)
    console.out.print(f"cluster down ({len(stopped)} controller(s) stopped)", markup=False)
