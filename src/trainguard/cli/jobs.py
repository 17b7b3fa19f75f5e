"""``trainguard job create|apply|describe|delete``; ``list``, ``pods`` and ``logs`` live in
`trainguard.cli.joblist` and `trainguard.cli.logs`, ``suspend``/``resume`` in
`trainguard.cli.suspend`.

These commands work on the store; a running controller (``trainguard controller`` or
``cluster up``) acts on what they write, as the Kubernetes API server and an operator do.
Listing and watching live in `trainguard.cli.joblist`, logs in `trainguard.cli.logs`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from trainguard import constants as c
from trainguard.cli import console, joblist
from trainguard.cli import logs as logs_cmd
from trainguard.cli import suspend as suspend_cmd
from trainguard.cli.console import handle_errors
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.output import LISTS, TEXT, WIDE, emit, parse_format
from trainguard.cli.output import option as output_option
from trainguard.cli.render import describe, job_object
from trainguard.cli.validate import print_warnings, read_manifest
from trainguard.controller.submit import submit, with_name
from trainguard.errors import UsageError
from trainguard.spec import LoadedJob
from trainguard.spec.job import HyperPodPyTorchJob
from trainguard.store.records import JobRecord

job_app = typer.Typer(help="Create, list, inspect and delete jobs.", no_args_is_help=True)
job_app.command("logs")(logs_cmd.logs)
job_app.command("list")(joblist.list_jobs)
job_app.command("pods")(joblist.pods)
job_app.command("suspend")(suspend_cmd.suspend)
job_app.command("resume")(suspend_cmd.resume)
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]


FileOpt = Annotated[str, typer.Option("--filename", "-f", help="Manifest file ('-' = stdin).")]
EnvsubstOpt = Annotated[bool, typer.Option("--envsubst", help="Substitute $VARS first.")]


@job_app.command("create")
@handle_errors
def create(file: FileOpt, envsubst: EnvsubstOpt = False) -> None:
    """Submit jobs to the local cluster (a controller must run to act on them)."""
    cluster = open_cluster()
    for loaded in _read(file, envsubst=envsubst):
        record = submit(cluster.store, loaded.job, now=time.time(), source_dir=_source_dir(file))
        console.out.print(f"{_kind(record)}/{record.name} created", markup=False)
    _warn_without_controller(cluster)


@job_app.command("apply")
@handle_errors
def apply(file: FileOpt, envsubst: EnvsubstOpt = False) -> None:
    """Create the jobs of a manifest, or leave them be when they exist unchanged (kubectl apply).

    A job whose spec changed is refused: its pods run the old spec, and a running job's spec
    cannot be changed safely; delete it first (job delete -f FILE), then apply.
    """
    cluster = open_cluster()
    refused = []
    for loaded in _read(file, envsubst=envsubst):
        job = with_name(loaded.job)
        existing = cluster.store.find_job(job.namespace, job.name)
        if existing is None:
            record = submit(cluster.store, job, now=time.time(), source_dir=_source_dir(file))
            console.out.print(f"{_kind(record)}/{record.name} created", markup=False)
        elif _changes(existing, job):
            refused.append(f"{_kind(existing)}/{job.name}")
            console.error(
                f"{_kind(existing)}/{job.name}: changed {', '.join(_changes(existing, job))} "
                f"of an existing job ({_phase(existing)}) cannot be applied; delete it first "
                f"(trainguard job delete -f {file}), then apply"
            )
        else:
            console.out.print(f"{_kind(existing)}/{job.name} unchanged", markup=False)
    _warn_without_controller(cluster)
    if refused:
        raise typer.Exit(console.EXIT_FAILED)


def _read(file: str, *, envsubst: bool) -> list[LoadedJob]:
    jobs = read_manifest(file, envsubst=envsubst)
    print_warnings(jobs)
    return jobs


def _source_dir(file: str) -> str:
    return str(Path(file).resolve().parent) if file != "-" else str(Path.cwd())


def _kind(record: JobRecord) -> str:
    return str(record.manifest.get("kind", c.KIND)).lower()


def _phase(record: JobRecord) -> str:
    return record.state.phase.value


APPLIED_METADATA = ("labels", "annotations")
"""Metadata that ``apply`` compares besides the spec (the rest is set by the system)."""


def _changes(record: JobRecord, job: HyperPodPyTorchJob) -> list[str]:
    """The top-level parts of ``job`` that differ from the stored job."""
    new, old = job.to_manifest(), record.manifest
    changed = ["spec"] if new.get("spec") != old.get("spec") else []
    for key in APPLIED_METADATA:
        if (new.get("metadata") or {}).get(key) != (old.get("metadata") or {}).get(key):
            changed.append(f"metadata.{key}")
    return changed


def _warn_without_controller(cluster: LocalCluster) -> None:
    if cluster.live_controller() is None:
        console.warn("no controller runs: start 'trainguard controller' or 'trainguard cluster up'")


@job_app.command("describe")
@handle_errors
def describe_job(
    name: str,
    namespace: Namespace = "default",
    output: Annotated[str, output_option(LISTS)] = TEXT,
) -> None:
    """Show a job's status, conditions, pods and events (like kubectl describe)."""
    fmt = parse_format(output, LISTS)
    store = open_cluster().store
    record = store.get_job(namespace, name)
    events = store.list_events(kind="Job", namespace=namespace, name=name)
    if fmt.is_document:
        emit(job_object(record, events), fmt)
        return
    pods = store.list_pods(namespace, name)
    text = describe(record, pods, events, time.time(), wide=fmt.kind == WIDE)
    console.out.print(text, markup=False, highlight=False)


@job_app.command("delete")
@handle_errors
def delete_job(
    name: Annotated[str | None, typer.Argument(help="Job name (or -f FILE).")] = None,
    file: Annotated[
        str | None, typer.Option("--filename", "-f", help="Delete the jobs of this manifest.")
    ] = None,
    namespace: Namespace = "default",
    wait: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the controller.")
    ] = 60.0,
) -> None:
    """Delete a job and its pods, by name or by manifest (kubectl delete -f)."""
    if (name is None) == (file is None):
        raise UsageError("give a job name or -f FILE (one of them)")
    targets = [(namespace, name)] if name is not None else _named(file or "-")
    cluster = open_cluster()
    for job_namespace, job_name in targets:
        _delete(cluster, job_namespace, job_name, wait=wait)
        console.out.print(f"job {job_name} deleted", markup=False)


def _named(file: str) -> list[tuple[str, str]]:
    """(namespace, name) of every job in ``file``; generateName jobs have no name to delete."""
    found = []
    for loaded in read_manifest(file):
        if not loaded.job.metadata.name:
            raise UsageError(f"{file}: a job has only metadata.generateName: delete it by name")
        found.append((loaded.job.namespace, loaded.job.name))
    return found


def _delete(cluster: LocalCluster, namespace: str, name: str, *, wait: float) -> None:
    cluster.store.request_deletion(namespace, name)
    if cluster.live_controller() is None:
        record = cluster.store.get_job(namespace, name)
        backend = cluster.backend()
        for pod in cluster.store.list_pods(namespace, name):
            backend.delete_pod(pod, grace=10)
        backend.release_job(namespace, name, record.uid)
        cluster.store.remove_job(namespace, name)
        return
    deadline = time.monotonic() + wait
    while cluster.store.find_job(namespace, name) is not None:
        if time.monotonic() > deadline:
            console.fail(f"job {name} is still being deleted after {wait:g}s", console.EXIT_FAILED)
        time.sleep(0.2)
