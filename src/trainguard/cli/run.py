"""``trainguard run``: run one job to its end in the foreground on the local cluster.

With no controller running, this process is the controller for as long as the job runs; with
one running (``trainguard controller`` / ``cluster up``), it submits the job and follows it. A
job of the same name that is still active is attached to rather than started twice, which is
how a ``run`` killed mid-job is continued: run the same command again.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from trainguard.cli import console
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.progress import ProgressView
from trainguard.cli.render import describe, job_object
from trainguard.cli.validate import Output, read_manifest
from trainguard.controller.faults import parse_fault
from trainguard.controller.loop import Controller
from trainguard.controller.state import TERMINAL, JobPhase, JobState
from trainguard.controller.submit import submit, with_name
from trainguard.errors import UsageError
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.store.records import JobRecord

POLL_SECONDS = 0.5


def run(
    file: Annotated[str, typer.Argument(help="Job manifest (HyperPodPyTorchJob or PyTorchJob).")],
    nodes: Annotated[
        int | None,
        typer.Option("--nodes", help="Simulated nodes (default: replicas + spares + 1)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="KIND[:rank=R,node=N,after=S]; KIND: kill-worker, hang-worker, "
            "kill-agent, node-unhealthy. Repeatable.",
        ),
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text or json (the final job).")
    ] = Output.text,
    envsubst: Annotated[
        bool, typer.Option("--envsubst", help="Substitute $VARS from the environment.")
    ] = False,
) -> None:
    """Run a job to the end on the local cluster; exit 0 if Completed, 1 if Failed."""
    faults = [parse_fault(f).render() for f in fault or []]
    loaded = read_manifest(file, envsubst=envsubst)
    if len(loaded) != 1:
        raise UsageError(f"{file}: holds {len(loaded)} jobs; run takes exactly one")
    job = with_name(loaded[0].job)
    cluster = open_cluster()
    _ensure_nodes(cluster, job, nodes)
    source_dir = str(Path(file).resolve().parent) if file != "-" else str(Path.cwd())
    record = _submit_or_attach(cluster, job, faults=faults, source_dir=source_dir)
    final = _follow(cluster, record)
    _print_final(cluster, final, output)
    phase = JobState.model_validate(final.state).phase
    raise typer.Exit(console.EXIT_OK if phase is JobPhase.COMPLETED else console.EXIT_FAILED)


def _ensure_nodes(cluster: LocalCluster, job: HyperPodPyTorchJob, nodes: int | None) -> None:
    needed = job.spec.total_replicas
    count = nodes if nodes is not None else needed + job.spec.total_spares + 1
    if count < needed:
        raise UsageError(f"--nodes {count} is fewer than the job's {needed} replicas")
    cluster.backend().cluster.ensure_nodes(count, now=time.time())


def _submit_or_attach(
    cluster: LocalCluster, job: HyperPodPyTorchJob, *, faults: list[str], source_dir: str
) -> JobRecord:
    store = cluster.store
    existing = store.find_job(job.namespace, job.name)
    if existing is not None:
        phase = JobState.model_validate(existing.state).phase
        if phase not in TERMINAL and not existing.deletion_requested:
            console.err.print(f"job {job.name} is already running: following it", markup=False)
            return existing
        _remove_finished(cluster, existing)
    return submit(store, job, now=time.time(), source_dir=source_dir, faults=faults)


def _remove_finished(cluster: LocalCluster, record: JobRecord) -> None:
    """A finished job of the same name: delete its kept pods and its record."""
    backend = cluster.backend()
    for pod in cluster.store.list_pods(record.namespace, record.name):
        backend.delete_pod(pod, grace=5)
    backend.release_job(record.namespace, record.name, record.uid)
    cluster.store.remove_job(record.namespace, record.name)


def _follow(cluster: LocalCluster, record: JobRecord) -> JobRecord:
    controller = (
        None
        if cluster.live_controller()
        else Controller(store=cluster.store, backend=cluster.backend())
    )
    if controller is not None:
        controller.start()
    interrupted: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del frame
        interrupted.append(signum)
        cluster.store.request_deletion(record.namespace, record.name)

    previous = signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal)
    try:
        with ProgressView(
            cluster.store, record.namespace, record.name, console=console.err
        ) as view:
            while True:
                if controller is not None:
                    controller.step()
                view.update()
                current = cluster.store.find_job(record.namespace, record.name)
                if current is None or JobState.model_validate(current.state).phase in TERMINAL:
                    break
                if controller is not None:
                    controller.hub.wakeup.wait(controller.deps.settings.loop_interval)
                    controller.hub.wakeup.clear()
                else:
                    time.sleep(POLL_SECONDS)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        if controller is not None:
            controller.close()
    if current is None:
        console.fail(
            f"job {record.name} was deleted" + (" (interrupted)" if interrupted else ""),
            130 if interrupted else console.EXIT_FAILED,
        )
    return current


def _print_final(cluster: LocalCluster, record: JobRecord, output: Output) -> None:
    events = cluster.store.list_events(kind="Job", namespace=record.namespace, name=record.name)
    if output is Output.json:
        console.print_json(job_object(record, events))
        return
    pods = cluster.store.list_pods(record.namespace, record.name)
    console.out.print(describe(record, pods, events, time.time()), markup=False, highlight=False)
