"""``trainguard fault inject|list``, and the fault outcomes ``trainguard run`` prints at its end.

A requested fault is a test: one that never fired must not pass for one (issue 13). So
``fault inject`` refuses a job that has ended or does not exist (exit 2), waits briefly for the
controller's outcome, and says how to look it up later; ``fault list`` shows every request of
a job with its outcome; ``run`` prints each outcome and exits `EXIT_FAULT_NOT_INJECTED` when one
could not be injected, even though the job completed. ``--kubeconfig`` sends the request to a
job the Kubernetes operator runs (`fault_targets`).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.fault_targets import fault_target
from trainguard.cli.local import LocalCluster
from trainguard.cli.validate import Output
from trainguard.controller.fault_injection import check_fits
from trainguard.controller.fault_requests import steps_never_reported
from trainguard.controller.state import TERMINAL
from trainguard.errors import UsageError
from trainguard.spec.faults import parse_fault
from trainguard.store.base import Store
from trainguard.store.records import FaultOutcome, FaultRequest, JobRecord

DEFAULT_WAIT_S = 30.0
"""How long ``fault inject`` waits for the outcome by default."""
POLL_S = 0.2

fault_app = typer.Typer(help="Inject faults into running jobs.", no_args_is_help=True)
Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        exists=True,
        dir_okay=False,
        help="The job runs on this Kubernetes cluster under 'trainguard operator' "
        "(default: the local cluster).",
    ),
]


@fault_app.command("inject")
@handle_errors
def inject(
    name: str,
    spec: Annotated[str, typer.Argument(help="KIND[:rank=R,node=N,after=S,at-step=N]")],
    *,
    namespace: Namespace = "default",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the outcome (default) or not.")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait for the outcome.")
    ] = DEFAULT_WAIT_S,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Inject a fault into a running job; exit 0 injected, 2 refused, 3 not injected."""
    parsed = parse_fault(spec)
    with fault_target(kubeconfig) as target:
        record = _running_job(target.store, namespace, name)
        check_fits(parsed, record.job)
        request_id = target.store.add_fault_request(namespace, name, parsed, time.time())
        if not target.controller_running():
            console.warn(target.no_controller_hint)
        elif wait:
            request = _await_outcome(target.store, request_id, timeout)
            if request.outcome is not FaultOutcome.PENDING:
                report_outcome(request)
                raise typer.Exit(
                    console.EXIT_OK
                    if request.outcome is FaultOutcome.INJECTED
                    else console.EXIT_FAULT_NOT_INJECTED
                )
            console.err.print(f"still pending after {timeout:g} s", markup=False)
            if _steps_missing(request):
                assert parsed.at_step is not None
                console.warn(f"the job is training and {steps_never_reported(parsed.at_step)}")
    check = f"trainguard fault list {name}" + (f" -n {namespace}" if namespace != "default" else "")
    console.out.print(
        f"fault {parsed.render()} queued for job {name} (request {request_id}); "
        f"see its outcome with: {check}",
        markup=False,
    )


@fault_app.command("list")
@handle_errors
def list_faults(
    name: str,
    namespace: Namespace = "default",
    output: Annotated[Output, typer.Option("--output", "-o", help="text or json.")] = Output.text,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Every fault requested for a job, with its outcome."""
    with fault_target(kubeconfig) as target:
        if target.store.find_job(namespace, name) is None:
            raise UsageError(f"job {name} not found in namespace {namespace}")
        requests = target.store.list_fault_requests(namespace, name)
    if output is Output.json:
        console.print_json([_as_json(r) for r in requests])
        return
    for request in requests:
        console.out.print(describe_outcome(request), markup=False)
    if not requests:
        console.err.print(f"no faults were requested for job {name}", markup=False)


def report_outcomes(cluster: LocalCluster, record: JobRecord) -> bool:
    """Print every fault of ``record``'s job with its outcome (stderr); True if all fired."""
    requests = cluster.store.list_fault_requests(record.namespace, record.name)
    for request in requests:
        report_outcome(request)
    return all(r.outcome is FaultOutcome.INJECTED for r in requests)


def report_outcome(request: FaultRequest) -> None:
    """One request's outcome on stderr, as an error when it was not injected."""
    if request.outcome is FaultOutcome.INJECTED:
        console.err.print(describe_outcome(request), markup=False)
    else:
        console.error(describe_outcome(request))


def describe_outcome(request: FaultRequest) -> str:
    """``fault SPEC: injected at HH:MM:SS: what`` / ``fault SPEC: not injected: why``."""
    spec = request.spec.render()
    if request.outcome is FaultOutcome.INJECTED:
        return f"fault {spec}: injected at {_clock(request.done_at)}: {request.result}"
    if request.outcome is FaultOutcome.NOT_INJECTED:
        return f"fault {spec}: not injected: {request.result}"
    return f"fault {spec}: pending (not injected yet)"


def _running_job(store: Store, namespace: str, name: str) -> JobRecord:
    """The job, if a fault can still hit it; `UsageError` (exit 2) with the reason otherwise."""
    record = store.find_job(namespace, name)
    if record is None:
        raise UsageError(f"job {name} not found in namespace {namespace}")
    phase = record.state.phase
    if phase in TERMINAL:
        raise UsageError(f"job {name} has ended ({phase.value}): no fault can be injected")
    if record.deletion_requested:
        raise UsageError(f"job {name} is being deleted: no fault can be injected")
    return record


def _await_outcome(store: Store, request_id: int, timeout: float) -> FaultRequest:
    deadline = time.monotonic() + timeout
    request = store.get_fault_request(request_id)
    while request.outcome is FaultOutcome.PENDING and time.monotonic() < deadline:
        time.sleep(POLL_S)
        request = store.get_fault_request(request_id)
    return request


def _steps_missing(request: FaultRequest) -> bool:
    """An ``at-step`` request of a job that trains but has reported no step yet."""
    return (
        request.spec.at_step is not None
        and request.training_at is not None
        and request.reported_step is None
    )


def _as_json(request: FaultRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "spec": request.spec.render(),
        "outcome": request.outcome.value,
        "requestedAt": request.created_at,
        "decidedAt": request.done_at,
        "result": request.result,
    }


def _clock(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%H:%M:%S") if stamp is not None else "?"
