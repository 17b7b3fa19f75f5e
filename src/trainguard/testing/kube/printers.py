"""Server-side printers of the built-in kinds: the columns ``kubectl get`` shows.

A real API server answers ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` with the
columns its internal printers define (``pkg/printers/internalversion/printers.go``); kubectl only
renders them, hiding columns of priority > 0 unless ``-o wide``. This module transcribes those
printers for the kinds the fake serves (Pod, Node, Service, Secret, ConfigMap, Namespace, Lease,
Event). Each printer is a list of column definitions and a function from object and ``now`` to
cells; `tables.py` builds the ``Table``. A kind without a printer (CRDs) gets the default
``Name``/``Created At`` columns there, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trainguard.testing.kube.timefmt import age, since

JsonMap = dict[str, Any]
Cells = list[Any]
NONE = "<none>"


@dataclass(frozen=True)
class Printer:
    """The column definitions of a kind and the function that fills one row."""

    columns: list[JsonMap]
    cells: Callable[[JsonMap, datetime], Cells]


def column(
    name: str, kind: str = "string", *, priority: int = 0, fmt: str = "", doc: str = ""
) -> JsonMap:
    """A ``TableColumnDefinition``."""
    return {"name": name, "type": kind, "format": fmt, "description": doc, "priority": priority}


NAME = column("Name", fmt="name", doc="Name must be unique within a namespace.")
AGE = column(
    "Age",
    doc="CreationTimestamp is the server time when this object was created.",
)


def _name(obj: JsonMap) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _created(obj: JsonMap, now: datetime) -> str:
    return age(obj.get("metadata", {}).get("creationTimestamp"), now)


def pod_cells(pod: JsonMap, now: datetime) -> Cells:
    """NAME READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE READINESS GATES."""
    spec, status = pod.get("spec", {}), pod.get("status", {})
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready") and "running" in (s.get("state") or {}))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    last = [
        s["lastState"]["terminated"].get("finishedAt")
        for s in statuses
        if (s.get("lastState") or {}).get("terminated")
    ]
    restart_text = (
        f"{restarts} ({since(max(last), now)} ago)" if restarts and any(last) else str(restarts)
    )
    gates = spec.get("readinessGates") or []
    return [
        _name(pod),
        f"{ready}/{len(spec.get('containers') or [])}",
        pod_reason(pod),
        restart_text,
        _created(pod, now),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        f"{len(gates)}" if gates else NONE,
    ]


def pod_reason(pod: JsonMap) -> str:
    """The STATUS column: phase, overridden by the pod's reason and its containers' states."""
    status = pod.get("status", {})
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    running = False
    for state in reversed([s.get("state") or {} for s in status.get("containerStatuses") or []]):
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None:
            reason = terminated.get("reason") or _exit_text(terminated)
        elif "running" in state:
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _exit_text(terminated: JsonMap) -> str:
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def node_cells(node: JsonMap, now: datetime) -> Cells:
    """NAME STATUS ROLES AGE VERSION | INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL CONTAINER-RUNTIME."""
    status = node.get("status", {})
    info = status.get("nodeInfo") or {}
    return [
        _name(node),
        node_status(node),
        ",".join(node_roles(node)) or NONE,
        _created(node, now),
        info.get("kubeletVersion", ""),
        _address(status, "InternalIP"),
        _address(status, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def node_status(node: JsonMap) -> str:
    """``Ready``, ``NotReady`` or ``Unknown``, plus ``SchedulingDisabled`` when cordoned."""
    ready = [c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"]
    text = "Unknown"
    if ready:
        text = {"True": "Ready", "False": "NotReady"}.get(ready[0].get("status", ""), "Unknown")
    if node.get("spec", {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: JsonMap) -> list[str]:
    """Roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role`` labels."""
    roles = set()
    for key, value in (node.get("metadata", {}).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _address(status: JsonMap, kind: str) -> str:
    found = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == kind]
    return str(found[0]) if found else NONE


def service_cells(service: JsonMap, now: datetime) -> Cells:
    """NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE | SELECTOR."""
    spec = service.get("spec", {})
    ports = [
        f"{p.get('port')}"
        + (f":{p['nodePort']}" if p.get("nodePort") else "")
        + f"/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    ]
    selector = spec.get("selector") or {}
    external = ",".join(spec.get("externalIPs") or []) or NONE
    return [
        _name(service),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or NONE,
        external,
        ",".join(ports) or NONE,
        _created(service, now),
        ",".join(f"{k}={selector[k]}" for k in sorted(selector)) or NONE,
    ]


def event_cells(event: JsonMap, now: datetime) -> Cells:
    """LAST SEEN TYPE REASON OBJECT MESSAGE | SUBOBJECT SOURCE FIRST SEEN COUNT NAME (core/v1)."""
    first = since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    if event.get("series"):
        last = since(event["series"].get("lastObservedTime"), now)
        count = event["series"].get("count", count)
    involved = event.get("involvedObject") or {}
    target = str(involved.get("kind", "")).lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    source = (event.get("source") or {}).get("component") or event.get("reportingComponent", "")
    host = (event.get("source") or {}).get("host") or event.get("reportingInstance", "")
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{source}, {host}" if host else source,
        str(event.get("message", "")).strip(),
        first,
        int(count),
        _name(event),
    ]


def _data_count(obj: JsonMap) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


PRINTERS: dict[str, Printer] = {
    "Pod": Printer(
        [NAME, column("Ready"), column("Status"), column("Restarts"), AGE]
        + [column(n, priority=1) for n in ("IP", "Node", "Nominated Node", "Readiness Gates")],
        pod_cells,
    ),
    "Node": Printer(
        [NAME, column("Status"), column("Roles"), AGE, column("Version")]
        + [
            column(n, priority=1)
            for n in (
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            )
        ],
        node_cells,
    ),
    "Service": Printer(
        [
            NAME,
            column("Type"),
            column("Cluster-IP"),
            column("External-IP"),
            column("Port(s)"),
            AGE,
            column("Selector", priority=1),
        ],
        service_cells,
    ),
    "Event": Printer(
        [
            *(column(n) for n in ("Last Seen", "Type", "Reason", "Object")),
            *(column(n, priority=1) for n in ("Subobject", "Source")),
            column("Message"),
            *(column(n, priority=1) for n in ("First Seen", "Count", "Name")),
        ],
        event_cells,
    ),
    "Secret": Printer(
        [NAME, column("Type"), column("Data", "integer"), AGE],
        lambda o, now: [_name(o), o.get("type", "Opaque"), _data_count(o), _created(o, now)],
    ),
    "ConfigMap": Printer(
        [NAME, column("Data", "integer"), AGE],
        lambda o, now: [_name(o), _data_count(o), _created(o, now)],
    ),
    "Namespace": Printer(
        [NAME, column("Status"), AGE],
        lambda o, now: [_name(o), o.get("status", {}).get("phase", "Active"), _created(o, now)],
    ),
    "Lease": Printer(
        [NAME, column("Holder"), AGE],
        lambda o, now: [_name(o), o.get("spec", {}).get("holderIdentity") or "", _created(o, now)],
    ),
}
"""Printers by kind (events in their stored core/v1 form, see `eventviews`)."""
