"""``trainguard health check``, ``trainguard health deep`` and ``trainguard health-agent``.

Thin wiring only: the checks come from `trainguard.health.catalog`, the loop from
`trainguard.health.HealthAgent`, and the node sink from `make_sink` (the local cluster's store)
or, with ``--kubeconfig``/``--in-cluster``, from `kube_sink` (the Node object through the
Kubernetes API, `trainguard.backends.kubernetes.nodesink`). On Kubernetes the agent runs as a
DaemonSet pod: ``--in-cluster`` uses its service account, and ``--node`` defaults to
``$NODE_NAME`` (the downward API's ``spec.nodeName``).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster, load_config
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.kubehealth import InClusterOpt, KubeconfigOpt, kube_sink
from trainguard.cli.local import open_cluster
from trainguard.cli.output import OBJECTS, TEXT, emit, parse_format
from trainguard.cli.output import option as output_option
from trainguard.cli.render import table, text
from trainguard.errors import NotFoundError, UsageError
from trainguard.health import (
    HealthAgent,
    HealthCheck,
    HealthReport,
    HealthStatus,
    NodeStatusSink,
)
from trainguard.health.agent import probe
from trainguard.health.catalog import CHECK_NAMES, CheckSettings, build_checks
from trainguard.health.deep.config import ConnectivityConfig, StressConfig
from trainguard.health.deep.runner import DeepHealthRunner
from trainguard.store import home as default_home

health_app = typer.Typer(help="Node health checks and deep health checks.", no_args_is_help=True)

ChecksOpt = Annotated[
    str | None,
    typer.Option("--checks", help=f"Comma-separated subset of {', '.join(CHECK_NAMES)}."),
]
DiskOpt = Annotated[
    list[str] | None,
    typer.Option("--disk-path", help="Checkpoint/log directory to watch (repeatable)."),
]
KernelOpt = Annotated[
    Path | None, typer.Option("--kernel-log", help="Kernel log file (default /dev/kmsg).")
]
UrlOpt = Annotated[
    str | None, typer.Option("--controller-url", help="Reference clock for ClockSkew.")
]
GpusOpt = Annotated[int | None, typer.Option("--expected-gpus", help="GPUs this node has.")]


def make_sink(node: str, *, root: Path | None = None) -> NodeStatusSink:
    """The sink through which health code reads and writes ``node``'s labels.

    Raises:
        UsageError: there is no local cluster store at ``root`` or it has no node ``node``.
    """
    directory = root or default_home()
    if not (directory / "state.db").exists():
        raise UsageError(
            f"no trainguard cluster store found at {directory} (start one with "
            "'trainguard cluster up' or set $TRAINGUARD_HOME)"
        )
    store = open_cluster(directory).store
    try:
        store.get_node(node)
    except NotFoundError as exc:
        known = ", ".join(n.name for n in store.list_nodes()) or "none"
        raise UsageError(
            f"node {node!r} is not in the cluster at {directory} (nodes: {known})"
        ) from exc
    return StoreNodeSink(store)


def node_settings(
    node: str | None,
    *,
    disk_paths: list[str] | None,
    kernel_log: Path | None,
    controller_url: str | None,
    expected_gpus: int | None,
    one_shot: bool,
) -> CheckSettings:
    """Settings for this machine, or for simulated ``node`` of the local cluster (its memory
    directory is its checkpoint path and holds its boot id, which its reboot wipes)."""
    paths = list(disk_paths or [])
    extra: dict[str, Any] = {}
    if node is not None and (default_home() / "state.db").exists():
        make_sink(node)  # the node must exist
        cluster = open_cluster()
        memory = LocalCluster(cluster.store, cluster.home, load_config(cluster.home)).node_memory(
            node
        )
        memory.mkdir(parents=True, exist_ok=True)
        paths = paths or [str(memory), str(cluster.home)]
        extra = {"boot_id_path": str(memory / "boot_id"), "simulated_boot": True}
    return CheckSettings(
        disk_paths=tuple(paths or ["/tmp"]),
        kernel_log=str(kernel_log) if kernel_log else None,
        kernel_log_from_start=one_shot,
        controller_url=controller_url,
        expected_gpus=expected_gpus,
        **extra,
    )


def _names(checks: str | None) -> list[str] | None:
    return [n.strip() for n in checks.split(",") if n.strip()] if checks else None


@health_app.command("check")
@handle_errors
def check(
    *,
    node: Annotated[str | None, typer.Option("--node", help="Simulated node to check.")] = None,
    checks: ChecksOpt = None,
    output: Annotated[str, output_option(OBJECTS)] = TEXT,
    disk_path: DiskOpt = None,
    kernel_log: KernelOpt = None,
    controller_url: UrlOpt = None,
    expected_gpus: GpusOpt = None,
) -> None:
    """Run the checks once on this machine and print the reports (exit 1 if any failed)."""
    fmt = parse_format(output, OBJECTS)
    settings = node_settings(
        node,
        disk_paths=disk_path,
        kernel_log=kernel_log,
        controller_url=controller_url,
        expected_gpus=expected_gpus,
        one_shot=True,
    )
    now = time.time()
    reports = [probe(s.check, now) for s in build_checks(settings, names=_names(checks))]
    if fmt.is_document:
        emit({"node": node, "reports": [r.to_json() for r in reports]}, fmt)
    else:
        _print_table(reports)
    if any(r.status is HealthStatus.UNHEALTHY for r in reports):
        raise typer.Exit(console.EXIT_FAILED)


def _print_table(reports: list[HealthReport]) -> None:
    rows = [
        [r.check, r.status.value, text(r.reason), r.action.label if r.failed else "-", r.message]
        for r in reports
    ]
    shown = table(("CHECK", "STATUS", "REASON", "ACTION", "MESSAGE"), rows)[0]
    console.out.print(shown, markup=False, highlight=False)


def health_agent(
    *,
    node: Annotated[
        str, typer.Option("--node", envvar=c.ENV_NODE_NAME, help="The node this agent watches.")
    ],
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    checks: ChecksOpt = None,
    disk_path: DiskOpt = None,
    kernel_log: KernelOpt = None,
    controller_url: UrlOpt = None,
    expected_gpus: GpusOpt = None,
    interval: Annotated[float, typer.Option(help="Seconds between probes.")] = 30.0,
    kernel_interval: Annotated[float, typer.Option(help="Seconds between log reads.")] = 5.0,
    recover_after: Annotated[int, typer.Option(help="Passing probes before recovery.")] = 3,
) -> None:
    """Run the node health loop for ``--node`` until SIGTERM/SIGINT.

    Without ``--kubeconfig``/``--in-cluster`` the node is one of the local cluster's; with
    either, it is a Kubernetes Node (labels, annotations and Events through the API).
    """
    on_kube = kubeconfig is not None or in_cluster
    sink = kube_sink(node, kubeconfig=kubeconfig) if on_kube else make_sink(node)
    settings = node_settings(
        None if on_kube else node,
        disk_paths=disk_path,
        kernel_log=kernel_log,
        controller_url=controller_url,
        expected_gpus=expected_gpus,
        one_shot=False,
    )
    settings = replace(settings, interval_s=interval, kernel_interval_s=kernel_interval)
    scheduled = build_checks(settings, names=_names(checks))
    agent = HealthAgent(
        node, sink, scheduled, recover_after=recover_after, boot_id=settings.boot_id()
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    names = ", ".join(s.check.name for s in scheduled)
    console.err.print(f"health-agent for {node}: {names}", markup=False)
    agent.run(stop)


class DeepConfig(BaseModel):
    """``health deep --config FILE``: settings of both deep checks (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    instance_stress: StressConfig = Field(default_factory=StressConfig, alias="instanceStress")
    instance_connectivity: ConnectivityConfig = Field(
        default_factory=ConnectivityConfig, alias="instanceConnectivity"
    )


def load_deep_config(path: Path | None) -> DeepConfig:
    """The deep-check config in ``path`` (defaults without one).

    Raises:
        UsageError: the file is missing, not YAML, or a field is invalid (named by its path).
    """
    if path is None:
        return DeepConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return DeepConfig.model_validate(data)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path}: {where}: {first['msg']}") from exc


@health_app.command("deep")
@handle_errors
def deep(
    *,
    node: Annotated[list[str], typer.Option("--node", help="Node to check (repeatable).")],
    checks: Annotated[
        str, typer.Option("--checks", help="InstanceStress,InstanceConnectivity")
    ] = f"{c.DEEP_CHECK_STRESS},{c.DEEP_CHECK_CONNECTIVITY}",
    nodes: Annotated[
        str | None, typer.Option("--nodes", help="Comma-separated nodes for the all-reduce.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML: instanceStress, instanceConnectivity.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Seconds of compute burn per device.")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    output: Annotated[str, output_option(OBJECTS)] = TEXT,
) -> None:
    """Run deep health checks on nodes of the local cluster, or on Kubernetes Nodes with
    ``--kubeconfig``/``--in-cluster`` (the chart's Job); exit 1 if any node failed."""
    fmt = parse_format(output, OBJECTS)
    settings = load_deep_config(config)
    if duration is not None:
        settings.instance_stress.duration_s = duration
    selected = list(dict.fromkeys([*node, *(_names(nodes) or [])]))
    names = _names(checks) or []
    unknown = [n for n in names if n not in (c.DEEP_CHECK_STRESS, c.DEEP_CHECK_CONNECTIVITY)]
    if unknown or not names:
        raise UsageError(
            f"--checks: unknown {unknown or names}; use InstanceStress, InstanceConnectivity"
        )
    on_kube = kubeconfig is not None or in_cluster

    def sink_for(name: str) -> NodeStatusSink:
        return kube_sink(name, kubeconfig=kubeconfig) if on_kube else make_sink(name)

    sink = sink_for(selected[0])
    for name in selected[1:]:
        sink_for(name)  # every node must exist before any is marked
    # torch takes seconds to import: only this command pays for it.
    from trainguard.health.deep.connectivity import InstanceConnectivity  # noqa: PLC0415
    from trainguard.health.deep.stress import InstanceStress  # noqa: PLC0415

    deep_checks: list[HealthCheck] = []
    if c.DEEP_CHECK_STRESS in names:
        deep_checks.append(InstanceStress(settings.instance_stress))
    if c.DEEP_CHECK_CONNECTIVITY in names:
        deep_checks.append(InstanceConnectivity(selected, settings.instance_connectivity))
    results = DeepHealthRunner(sink).run(selected, deep_checks)
    if fmt.is_document:
        emit(
            {
                name: {"status": r.status, "failures": [f.to_json() for f in r.failures]}
                for name, r in results.items()
            },
            fmt,
        )
    else:
        for name, r in results.items():
            why = "; ".join(f"{f.check}: {f.message}" for f in r.failures)
            console.out.print(f"node/{name} {r.status}" + (f": {why}" if why else ""), markup=False)
    if any(r.status == c.DEEP_HEALTH_FAILED for r in results.values()):
        raise typer.Exit(console.EXIT_FAILED)
