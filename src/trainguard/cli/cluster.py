"""``trainguard controller`` and ``trainguard cluster up|down|status``.

``controller`` runs the controller in the foreground (what a Deployment does on Kubernetes);
``cluster up`` creates the simulated nodes and starts a controller in the background, so
``trainguard job ...`` commands have something to act on; ``cluster down`` deletes every job
and stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Annotated, Literal

import typer

from trainguard.backends.local.cluster import LocalClusterConfig, load_config, save_config
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.health import start_health_agents, stop_health_agents
from trainguard.cli.local import open_cluster
from trainguard.controller.loop import Controller

cluster_app = typer.Typer(help="Start and stop the local cluster.", no_args_is_help=True)


def controller(
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve /metrics here.")
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", help="Create nodes up to this count.")
    ] = None,
) -> None:
    """Run the controller in the foreground until SIGTERM or Ctrl-C (pods keep running)."""
    cluster = open_cluster()
    backend = cluster.backend()
    if nodes is not None:
        backend.cluster.ensure_nodes(nodes, now=time.time())
    ctrl = Controller(store=cluster.store, backend=backend)
    ctrl.start(metrics_port=metrics_port)

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
    if cluster.live_controller() is not None:
        console.out.print("controller already running", markup=False)
        return
    command = [sys.executable, "-m", "trainguard", "controller"]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    with (cluster.home / "controller.log").open("ab") as log:
        subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )
    deadline = time.monotonic() + 30
    while cluster.live_controller() is None:
        if time.monotonic() > deadline:
            console.fail(
                f"the controller did not start; see {cluster.home / 'controller.log'}",
                console.EXIT_FAILED,
            )
        time.sleep(0.2)
    console.out.print(
        f"cluster up: {nodes} node(s), controller running ({cluster.home})", markup=False
    )


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
        os.kill(lease.pid, signal.SIGTERM)
    backend = cluster.backend()
    for record in cluster.store.list_jobs():
        for pod in cluster.store.list_pods(record.namespace, record.name):
            backend.delete_pod(pod, grace=10)
        backend.release_job(record.namespace, record.name, record.uid)
        cluster.store.remove_job(record.namespace, record.name)
    backend.cluster.teardown()
    stop_health_agents(cluster.home)
    console.out.print("cluster down", markup=False)
