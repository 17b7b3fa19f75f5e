"""``trainguard node list`` and ``trainguard node label``.

Labelling a node ``sagemaker.amazonaws.com/node-health-status=UnschedulablePendingReboot`` is
HyperPod's documented resiliency test; here it triggers the same remediation.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from trainguard import constants as c
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.local import open_cluster
from trainguard.cli.output import OBJECTS, TEXT, as_list, emit, parse_format
from trainguard.cli.output import option as output_option
from trainguard.cli.render import table
from trainguard.errors import UsageError
from trainguard.spec.base import check_labels
from trainguard.store.records import EventRecord

NODE_COLUMNS = ("NAME", "HEALTH", "DEEP-HEALTH", "FAULT-REASONS", "INSTANCE-TYPE", "PODS")
node_app = typer.Typer(help="Inspect and label the local cluster's nodes.", no_args_is_help=True)


@node_app.command("list")
@handle_errors
def list_nodes(output: Annotated[str, output_option(OBJECTS)] = TEXT) -> None:
    """Nodes with health, deep-health status, fault reasons and the pods they host."""
    fmt = parse_format(output, OBJECTS)
    store = open_cluster().store
    nodes = store.list_nodes()
    pods: dict[str, list[str]] = {}
    for pod in store.list_pods():
        pods.setdefault(pod.node, []).append(pod.name)
    if fmt.is_document:
        items = [
            {
                "name": n.name,
                "labels": n.labels,
                "annotations": n.annotations,
                "pods": pods.get(n.name, []),
            }
            for n in nodes
        ]
        emit(as_list(items), fmt)
        return
    rows = [
        [
            node.name,
            node.labels.get(c.LABEL_NODE_HEALTH, "-"),
            node.labels.get(c.LABEL_DEEP_HEALTH, "-"),
            node.labels.get(c.LABEL_FAULT_REASONS, "-"),
            node.labels.get(c.LABEL_INSTANCE_TYPE, "-"),
            ",".join(pods.get(node.name, [])) or "-",
        ]
        for node in nodes
    ]
    console.out.print(table(NODE_COLUMNS, rows)[0], markup=False, highlight=False)


@node_app.command("label")
@handle_errors
def label(
    node: str,
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE to set, KEY- to remove.")],
) -> None:
    """Set or remove labels of a node (--overwrite is implied)."""
    changes: dict[str, str | None] = {}
    for item in assignments:
        if item.endswith("-") and "=" not in item:
            changes[item[:-1]] = None
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r}: expected KEY=VALUE or KEY-")
        try:
            check_labels({key: value})
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if key == c.LABEL_NODE_HEALTH and value not in c.HEALTH_STATUSES:
            raise UsageError(f"{key} must be one of {', '.join(c.HEALTH_STATUSES)}")
        changes[key] = value
    store = open_cluster().store
    store.patch_node(node, labels=changes)
    message = ", ".join(f"{k}={v}" if v is not None else f"{k}-" for k, v in changes.items())
    store.add_events([EventRecord("Node", "", node, "Normal", "Labelled", message, time.time())])
    console.out.print(f"node/{node} labeled", markup=False)
