"""``trainguard job list [-w]`` and ``trainguard job pods NAME``: what kubectl get shows.

``-w`` prints the table once and then one row per change (a new job, a new condition or phase,
a restart, a deletion) until Ctrl-C, like ``kubectl get -w``: rows keep the header's columns
so the output stays a table. The store is polled; a local cluster has no watch API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from trainguard.cli import console
from trainguard.cli.console import handle_errors
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.output import LISTS, OBJECTS, TEXT, WIDE, as_list, emit, parse_format
from trainguard.cli.output import option as output_option
from trainguard.cli.render import (
    JOB_COLUMNS,
    POD_COLUMNS,
    WIDE_COLUMNS,
    job_object,
    job_row,
    line,
    pod_row,
    table,
)
from trainguard.errors import UsageError
from trainguard.names import safe_join
from trainguard.store.records import JobRecord, PodRecord

WATCH_INTERVAL = 0.5
"""Seconds between looks at the store in ``job list -w``."""


@handle_errors
def list_jobs(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace.")
    ] = None,
    output: Annotated[str, output_option(LISTS)] = TEXT,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Then print each change until Ctrl-C.")
    ] = False,
) -> None:
    """List jobs (kubectl get)."""
    fmt = parse_format(output, LISTS)
    if watch and fmt.kind not in (TEXT, WIDE):
        raise UsageError("--watch prints table rows: use it with -o text or -o wide")
    cluster = open_cluster()
    records = cluster.store.list_jobs(namespace)
    if fmt.is_document:
        emit(as_list([job_object(r, []) for r in records]), fmt)
        return
    wide = fmt.kind == WIDE
    header = JOB_COLUMNS + (WIDE_COLUMNS if wide else ())
    rows = {_key(r): _row(cluster, r, wide=wide) for r in records}
    shown, widths = table(header, list(rows.values()))
    console.out.print(shown, markup=False, highlight=False)
    if watch:
        try:
            _watch(cluster, namespace, rows, widths, wide=wide)
        except KeyboardInterrupt:
            raise typer.Exit(console.EXIT_OK) from None


def _key(record: JobRecord) -> tuple[str, str]:
    return record.namespace, record.name


def _row(cluster: LocalCluster, record: JobRecord, *, wide: bool) -> list[str]:
    pods = cluster.store.list_pods(record.namespace, record.name) if wide else []
    return job_row(record, time.time(), wide=wide, pods=pods)


def _watch(
    cluster: LocalCluster,
    namespace: str | None,
    rows: dict[tuple[str, str], list[str]],
    widths: list[int],
    *,
    wide: bool,
) -> None:
    """Print a row whenever a job's row (age aside) changes, and one for each deleted job."""
    while True:
        time.sleep(WATCH_INTERVAL)
        current = {_key(r): r for r in cluster.store.list_jobs(namespace)}
        for key, record in current.items():
            row = _row(cluster, record, wide=wide)
            if _changed(rows.get(key), row):
                typer.echo(line(row, widths))
            rows[key] = row
        for key in [k for k in rows if k not in current]:
            gone = rows.pop(key)
            gone[2], gone[3] = "Deleted", "-"
            typer.echo(line(gone, widths))


def _changed(before: list[str] | None, after: list[str]) -> bool:
    age_column = JOB_COLUMNS.index("AGE")
    if before is None:
        return True
    return [c for i, c in enumerate(before) if i != age_column] != [
        c for i, c in enumerate(after) if i != age_column
    ]


@handle_errors
def pods(
    name: str,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
    output: Annotated[str, output_option(OBJECTS)] = TEXT,
) -> None:
    """The job's pods: node, rank, state, restarts (kubectl get pods -l HPJob=NAME)."""
    fmt = parse_format(output, OBJECTS)
    cluster = open_cluster()
    cluster.store.get_job(namespace, name)
    found = cluster.store.list_pods(namespace, name)
    now = time.time()
    rows = [pod_row(p, _restarts(cluster.home, p), now) for p in found]
    if fmt.is_document:
        items = [dict(zip([c.lower() for c in POD_COLUMNS], r, strict=True)) for r in rows]
        emit(as_list(items), fmt)
        return
    shown = table(POD_COLUMNS, rows)[0] if rows else f"no pods of job {name}"
    console.out.print(shown, markup=False, highlight=False)


def _restarts(home: Path, pod: PodRecord) -> int:
    """Worker restarts in the pod's current agent: its attempt directories after the first."""
    directory = safe_join(home / "pods", pod.namespace, pod.job, pod.name, what="pod directory")
    runs = sorted(directory.glob("logs/*/"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return 0
    return max(0, len(list(runs[-1].glob("attempt_*"))) - 1)
