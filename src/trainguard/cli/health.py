"""``trainguard health check``, ``trainguard health deep`` and ``trainguard health-agent``.

Thin wiring only: the checks come from `trainguard.health.catalog`, the loop from
`trainguard.health.HealthAgent`, and the node sink from `make_sink`, the one place that decides
where node labels live (the local cluster's store today; a Kubernetes sink later).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.table import Table

from trainguard import constants as c
from trainguard.backends.local.cluster import LocalCluster, load_config
from trainguard.backends.local.nodesink import StoreNodeSink
from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.local import open_cluster
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
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
    disk_path: DiskOpt = None,
    kernel_log: KernelOpt = None,
    controller_url: UrlOpt = None,
    expected_gpus: GpusOpt = None,
) -> None:
    """Run the checks once on this machine and print the reports (exit 1 if any failed)."""
    if output not in ("text", "json"):
        raise UsageError(f"--output must be text or json, not {output!r}")
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
    if output == "json":
        console.print_json({"node": node, "reports": [r.to_json() for r in reports]})
    else:
        _print_table(reports)
    if any(r.status is HealthStatus.UNHEALTHY for r in reports):
        raise typer.Exit(console.EXIT_FAILED)


def _print_table(reports: list[HealthReport]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("CHECK", "STATUS", "REASON", "ACTION", "MESSAGE"):
        table.add_column(column)
    for r in reports:
        action = r.action.label if r.failed else "-"
        table.add_row(r.check, r.status.value, r.reason, action, r.message)
    console.out.print(table)


def health_agent(
    *,
    node: Annotated[str, typer.Option("--node", help="The node this agent watches.")],
    checks: ChecksOpt = None,
    disk_path: DiskOpt = None,
    kernel_log: KernelOpt = None,
    controller_url: UrlOpt = None,
    expected_gpus: GpusOpt = None,
    interval: Annotated[float, typer.Option(help="Seconds between probes.")] = 30.0,
    kernel_interval: Annotated[float, typer.Option(help="Seconds between log reads.")] = 5.0,
    recover_after: Annotated[int, typer.Option(help="Passing probes before recovery.")] = 3,
) -> None:
    """Run the node health loop for ``--node`` until SIGTERM/SIGINT."""
    sink = make_sink(node)
    settings = node_settings(
        node,
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
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Run deep health checks on nodes of the local cluster (exit 1 if any node failed)."""
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
    sink = make_sink(selected[0])
    for name in selected[1:]:
        make_sink(name)  # every node must exist before any is marked
    # torch takes seconds to import: only this command pays for it.
    from trainguard.health.deep.connectivity import InstanceConnectivity  # noqa: PLC0415
    from trainguard.health.deep.stress import InstanceStress  # noqa: PLC0415

    deep_checks: list[HealthCheck] = []
    if c.DEEP_CHECK_STRESS in names:
        deep_checks.append(InstanceStress(settings.instance_stress))
    if c.DEEP_CHECK_CONNECTIVITY in names:
        deep_checks.append(InstanceConnectivity(selected, settings.instance_connectivity))
    results = DeepHealthRunner(sink).run(selected, deep_checks)
    if output == "json":
        console.print_json(
            {
                name: {"status": r.status, "failures": [f.to_json() for f in r.failures]}
                for name, r in results.items()
            }
        )
    else:
        for name, r in results.items():
            why = "; ".join(f"{f.check}: {f.message}" for f in r.failures)
            console.out.print(f"node/{name} {r.status}" + (f": {why}" if why else ""), markup=False)
    if any(r.status == c.DEEP_HEALTH_FAILED for r in results.values()):
        raise typer.Exit(console.EXIT_FAILED)


def simulated_kernel_log(home: Path, node: str) -> Path:
    """The kernel log of simulated ``node``: append Xid lines here to inject a GPU fault."""
    return home / "nodes" / node / "kern.log"


def start_health_agents(home: Path, nodes: list[str]) -> list[int]:
    """Start one background ``health-agent`` per simulated node (``cluster up --health-agents``).

    Each follows its node's own kernel log (`simulated_kernel_log`) and writes its pid to
    ``<home>/nodes/<node>/health-agent.pid`` so `stop_health_agents` can end it.

    Returns:
        The agents' pids.
    """
    pids = []
    for node in nodes:
        log = simulated_kernel_log(home, node)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        command = [
            sys.executable,
            "-m",
            "trainguard",
            "health-agent",
            "--node",
            node,
            "--checks",
            "DiskSpace,MemoryPressure,KernelLog",
            "--kernel-log",
            str(log),
            "--interval",
            "5",
            "--kernel-interval",
            "1",
        ]
        with (log.parent / "health-agent.log").open("ab") as out:
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, c.ENV_HOME: str(home)},
            )
        (log.parent / "health-agent.pid").write_text(str(proc.pid))
        pids.append(proc.pid)
    return pids


def stop_health_agents(home: Path, *, timeout: float = 10.0) -> int:
    """SIGTERM every health agent `start_health_agents` started under ``home``; return how
    many were running. Pid files of agents that are gone are removed."""
    stopped = 0
    for pid_file in sorted((home / "nodes").glob("*/health-agent.pid")):
        pid = int(pid_file.read_text().strip())
        pid_file.unlink()
        try:
            proc = psutil.Process(pid)
            if "health-agent" not in proc.cmdline():
                continue
            proc.terminate()
            proc.wait(timeout=timeout)
            stopped += 1
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            proc.kill()
            stopped += 1
    return stopped
