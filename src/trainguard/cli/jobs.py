"""``trainguard job ...`` and ``trainguard fault inject``: jobs on the local cluster.

These commands work on the store; a running controller (``trainguard controller`` or
``cluster up``) acts on what they write, as the Kubernetes API server and an operator do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from trainguard.agent.client import AgentClient
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.local import open_cluster
from trainguard.cli.render import describe, job_object, jobs_table
from trainguard.cli.validate import Output, read_manifest
from trainguard.controller.faults import parse_fault
from trainguard.controller.state import JobState
from trainguard.controller.submit import submit
from trainguard.errors import TrainguardError, UsageError
from trainguard.store.records import PodRecord

job_app = typer.Typer(help="Create, list, inspect and delete jobs.", no_args_is_help=True)
fault_app = typer.Typer(help="Inject faults into running jobs.", no_args_is_help=True)
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]


@job_app.command("create")
@handle_errors
def create(
    file: Annotated[str, typer.Option("--filename", "-f", help="Manifest file ('-' = stdin).")],
    envsubst: Annotated[bool, typer.Option("--envsubst", help="Substitute $VARS first.")] = False,
) -> None:
    """Submit jobs to the local cluster (a controller must run to act on them)."""
    cluster = open_cluster()
    source_dir = str(Path(file).resolve().parent) if file != "-" else str(Path.cwd())
    for loaded in read_manifest(file, envsubst=envsubst):
        record = submit(cluster.store, loaded.job, now=time.time(), source_dir=source_dir)
        console.out.print(f"{record.manifest['kind'].lower()}/{record.name} created", markup=False)
    if cluster.live_controller() is None:
        console.warn("no controller runs: start 'trainguard controller' or 'trainguard cluster up'")


@job_app.command("list")
@handle_errors
def list_jobs(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace.")
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o")] = Output.text,
) -> None:
    """List jobs."""
    cluster = open_cluster()
    records = cluster.store.list_jobs(namespace)
    if output is Output.json:
        console.print_json(
            {"apiVersion": "v1", "kind": "List", "items": [job_object(r, []) for r in records]}
        )
        return
    console.out.print(jobs_table(records, time.time()))


@job_app.command("describe")
@handle_errors
def describe_job(
    name: str,
    namespace: Namespace = "default",
    output: Annotated[Output, typer.Option("--output", "-o")] = Output.text,
) -> None:
    """Show a job's status, conditions, pods and events (like kubectl describe)."""
    store = open_cluster().store
    record = store.get_job(namespace, name)
    events = store.list_events(kind="Job", namespace=namespace, name=name)
    if output is Output.json:
        console.print_json(job_object(record, events))
        return
    pods = store.list_pods(namespace, name)
    console.out.print(describe(record, pods, events, time.time()), markup=False, highlight=False)


@job_app.command("delete")
@handle_errors
def delete_job(
    name: str,
    namespace: Namespace = "default",
    wait: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the controller.")
    ] = 60.0,
) -> None:
    """Delete a job and its pods."""
    cluster = open_cluster()
    cluster.store.request_deletion(namespace, name)
    if cluster.live_controller() is None:
        record = cluster.store.get_job(namespace, name)
        backend = cluster.backend()
        for pod in cluster.store.list_pods(namespace, name):
            backend.delete_pod(pod, grace=10)
        backend.release_job(namespace, name, record.uid)
        cluster.store.remove_job(namespace, name)
    else:
        deadline = time.monotonic() + wait
        while cluster.store.find_job(namespace, name) is not None:
            if time.monotonic() > deadline:
                console.fail(
                    f"job {name} is still being deleted after {wait:g}s", console.EXIT_FAILED
                )
            time.sleep(0.2)
    console.out.print(f"job {name} deleted", markup=False)


@job_app.command("logs")
@handle_errors
def logs(
    name: str,
    rank: Annotated[int, typer.Option("--rank", help="Global rank of the worker.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    tail: Annotated[int, typer.Option("--tail", help="Lines to show first.")] = 100,
    namespace: Namespace = "default",
) -> None:
    """Print a worker's log (through its pod's agent)."""
    store = open_cluster().store
    record = store.get_job(namespace, name)
    token = JobState.model_validate(record.state).token
    shown: list[str] = []
    while True:
        pod = _pod_of_rank(store.list_pods(namespace, name), rank, record.manifest)
        client = AgentClient(pod.url or "", token=token)
        try:
            lines = client.logs(rank=rank, tail=tail if not shown else 10_000)
        except TrainguardError as exc:
            if not follow:
                raise
            console.warn(str(exc))
            lines = shown
        finally:
            client.close()
        new = _new_lines(shown, lines)
        for line in new:
            typer.echo(line)
        shown.extend(new)
        if not follow:
            return
        time.sleep(1.0)


def _pod_of_rank(pods: list[PodRecord], rank: int, manifest: dict[str, Any]) -> PodRecord:
    nproc = str((manifest.get("spec") or {}).get("nprocPerNode", "1"))
    per_node = int(nproc) if nproc.isdigit() else 1
    for pod in pods:
        if pod.node_rank is not None and not pod.spare and pod.node_rank == rank // per_node:
            return pod
    raise UsageError(f"no pod runs rank {rank}")


def _new_lines(shown: list[str], lines: list[str]) -> list[str]:
    """The lines after the overlap with what was already printed."""
    if not shown:
        return lines
    for start in range(len(lines)):
        if lines[: len(lines) - start] == shown[-(len(lines) - start) :]:
            return lines[len(lines) - start :]
    return lines


@fault_app.command("inject")
@handle_errors
def inject(
    name: str,
    spec: Annotated[str, typer.Argument(help="KIND[:rank=R,node=N,after=S]")],
    namespace: Namespace = "default",
) -> None:
    """Ask the controller to inject a fault into a running job."""
    parsed = parse_fault(spec)
    cluster = open_cluster()
    cluster.store.get_job(namespace, name)
    request = cluster.store.add_fault_request(namespace, name, parsed.render(), time.time())
    console.out.print(
        f"fault {parsed.render()} queued for job {name} (request {request})", markup=False
    )
