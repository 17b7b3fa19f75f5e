"""``trainguard run``: run one job to its end in the foreground on the local cluster.

With no controller running, this process is the controller for as long as the job runs; with
one running (``trainguard controller`` / ``cluster up``), it submits the job and follows it. A
job of the same name that is still active is attached to rather than started twice, which is
how a ``run`` killed mid-job is continued: run the same command again.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from trainguard.backends.local.cluster import MAX_NODES
from trainguard.backends.local.mtcservers import (
    remove_server_memory,
    running_servers,
    stop_mtc_servers,
)
from trainguard.cli import console
from trainguard.cli.checkpoint import MtcServersFlag, start_node_servers
from trainguard.cli.faults import report_outcomes
from trainguard.cli.liveview import JobDisplay
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.output import Format, emit
from trainguard.cli.render import describe, job_object
from trainguard.cli.report import write_run_report
from trainguard.cli.validate import Output, print_warnings, read_manifest
from trainguard.controller.loop import Controller
from trainguard.controller.state import TERMINAL, JobPhase
from trainguard.controller.submit import submit, with_name
from trainguard.errors import UsageError
from trainguard.policy.elastic import elastic_bounds
from trainguard.spec.faults import FaultSpec, parse_fault
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.store.records import JobRecord

POLL_SECONDS = 0.5


def run(
    file: Annotated[str, typer.Argument(help="Job manifest (HyperPodPyTorchJob or PyTorchJob).")],
    *,
    nodes: Annotated[
        int | None,
        typer.Option("--nodes", help="Simulated nodes (default: replicas + spares + 1)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="KIND[:rank=R,node=N,after=S,at-step=N]; KIND: kill-worker, hang-worker, "
            "kill-agent, node-unhealthy; after= counts from the first training step. "
            "Repeatable.",
        ),
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text, json or yaml (the final job).")
    ] = Output.text,
    envsubst: Annotated[
        bool, typer.Option("--envsubst", help="Substitute $VARS from the environment.")
    ] = False,
    mtc: MtcServersFlag = None,
) -> None:
    """Run a job to the end on the local cluster.

    Exit: 0 Completed, 1 Failed, 2 bad input, 3 a requested fault was not injected.

    Every requested fault's outcome is printed at the end.
    """
    faults = [parse_fault(f) for f in fault or []]
    loaded = read_manifest(file, envsubst=envsubst)
    print_warnings(loaded)
    if len(loaded) != 1:
        raise UsageError(f"{file}: holds {len(loaded)} jobs; run takes exactly one")
    job = with_name(loaded[0].job)
    cluster = open_cluster()
    _ensure_nodes(cluster, job, nodes)
    source_dir = str(Path(file).resolve().parent) if file != "-" else str(Path.cwd())
    with mtc_servers(cluster, flag=mtc):
        record = _submit_or_attach(cluster, job, faults=faults, source_dir=source_dir)
        final = _follow(cluster, record)
    _print_final(cluster, final, output)
    _write_report(cluster, final)
    _print_kept_pods(cluster, final)
    all_fired = report_outcomes(cluster, final)
    phase = final.state.phase
    if phase is not JobPhase.COMPLETED:
        raise typer.Exit(console.EXIT_FAILED)
    raise typer.Exit(console.EXIT_OK if all_fired else console.EXIT_FAULT_NOT_INJECTED)


@contextlib.contextmanager
def mtc_servers(cluster: LocalCluster, *, flag: bool | None) -> Iterator[None]:
    """An MTC server per node while the job runs, unless ``--no-mtc`` (`start_node_servers`).

    Servers ``cluster up`` started are used and left running (with ``--no-mtc`` too: pods on
    those nodes still get them); servers started here are stopped, and their shards deleted,
    when the job ends.
    """
    home, nodes = cluster.home, [n.name for n in cluster.store.list_nodes()]
    owned = flag is not False and not running_servers(home)
    start_node_servers(home, cluster.backend().cluster, nodes, flag=flag)
    try:
        yield
    finally:
        if owned:
            stop_mtc_servers(home)
            remove_server_memory(cluster.backend().cluster, nodes)


def _ensure_nodes(cluster: LocalCluster, job: HyperPodPyTorchJob, nodes: int | None) -> None:
    """Size the local cluster for ``job``; a job that cannot fit is refused, not attempted.

    An elastic job needs ``minReplicas`` nodes and gets its largest size by default.
    """
    bounds = elastic_bounds(job.spec)
    needed = bounds.minimum if bounds else job.spec.total_replicas
    wanted = bounds.target if bounds else job.spec.total_replicas
    if needed > MAX_NODES:
        raise UsageError(
            f"job {job.name} needs {needed} nodes; a local cluster has at most {MAX_NODES}"
        )
    count = nodes if nodes is not None else min(wanted + job.spec.total_spares + 1, MAX_NODES)
    if count < needed:
        raise UsageError(f"--nodes {count} is fewer than the job's {needed} replicas")
    cluster.backend().cluster.ensure_nodes(count, now=time.time())


def _submit_or_attach(
    cluster: LocalCluster, job: HyperPodPyTorchJob, *, faults: list[FaultSpec], source_dir: str
) -> JobRecord:
    store = cluster.store
    existing = store.find_job(job.namespace, job.name)
    if existing is not None:
        phase = existing.state.phase
        if phase not in TERMINAL and not existing.deletion_requested:
            console.err.print(f"job {job.name} is already running: following it", markup=False)
            for spec in faults:  # asked for now: injected into the running job, not dropped
                store.add_fault_request(existing.namespace, existing.name, spec, time.time())
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
        with JobDisplay(cluster.store, record.namespace, record.name, console=console.err) as view:
            while True:
                if controller is not None:
                    controller.step()
                view.update()
                current = cluster.store.find_job(record.namespace, record.name)
                if current is None or current.state.phase in TERMINAL:
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


def _write_report(cluster: LocalCluster, record: JobRecord) -> None:
    """The job report (picture + HTML page) into the job's directory, drawn after ``run``
    exits so its exit code does not wait for matplotlib; a failure only warns."""
    try:
        path = write_run_report(cluster, record)
    except (OSError, ValueError, pickle.PicklingError) as exc:
        console.warn(f"job report not written: {exc}")
        return
    if path is not None:
        console.err.print(
            f"job report: {path} and {path.with_suffix('.html')}, drawn in the background "
            f"(trainguard job report {record.name})",
            markup=False,
        )


def _print_final(cluster: LocalCluster, record: JobRecord, output: Output) -> None:
    events = cluster.store.list_events(kind="Job", namespace=record.namespace, name=record.name)
    if output is not Output.text:
        emit(job_object(record, events), Format(output.value))
        return
    pods = cluster.store.list_pods(record.namespace, record.name)
    console.out.print(describe(record, pods, events, time.time()), markup=False, highlight=False)


def _print_kept_pods(cluster: LocalCluster, record: JobRecord) -> None:
    """Say which processes outlive ``run`` (pods kept by ``cleanPodPolicy``) and how to end them.

    Kept pods hold their nodes: the next job that needs those nodes waits for them, so the
    user is told here rather than finding out from an Unschedulable job later.
    """
    kept = cluster.store.list_pods(record.namespace, record.name)
    if not kept:
        return
    clean = record.job.spec.run_policy.clean_pod_policy
    lines = [f"{len(kept)} pod(s) of job {record.name} left running (cleanPodPolicy {clean}):"]
    lines += [f"  pod {p.name} on {p.node}, pid {p.pid}" for p in kept]
    lines.append(
        f"remove them with `trainguard job delete {record.name}`"
        " (or every job and pod with `trainguard cluster down`)"
    )
    console.err.print("\n".join(lines), markup=False, highlight=False)
