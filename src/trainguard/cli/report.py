"""``trainguard job report NAME``: a job's timeline and goodput accounting (text, JSON, picture).

Answers "where did the time go?" after (or during) a run: boot, useful training, checkpoint
stalls, steps redone after restarts, fault detection and restarts, from the store and the
agents' per-rank timelines (`trainguard.cli.report_data`). The accounting rule is the
controller's own (`trainguard.policy.goodput`), so the report's goodput is ``status.goodput``
refined by the checkpoint stalls only the timelines know. ``trainguard run`` gathers the report
when the job ends and has it drawn into the job's directory after it exits (`write_run_report`).
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from trainguard.cli import console
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.report_data import JobReport, gather, job_dir, to_json
from trainguard.cli.report_render import hand_over
from trainguard.errors import UsageError
from trainguard.policy.goodput import BUCKETS
from trainguard.store.records import JobRecord

RUN_REPORT_PNG = "report.png"
RUN_REPORT_HTML = "report.html"
"""File names of the report ``run`` writes into ``$TRAINGUARD_HOME/pods/<namespace>/<job>/``."""


class ReportOutput(StrEnum):
    """Formats of the report on stdout."""

    text = "text"
    json = "json"


def report(
    name: Annotated[str, typer.Argument(help="Job name.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
    output: Annotated[
        ReportOutput, typer.Option("--output", "-o", help="text or json.")
    ] = ReportOutput.text,
    png: Annotated[
        Path | None, typer.Option("--png", help="Write the timeline picture (PNG) here.")
    ] = None,
    page: Annotated[
        Path | None,
        typer.Option("--html", help="Write an HTML page (picture + accounting table) here."),
    ] = None,
) -> None:
    """Show where a job's time went: per-rank timeline and goodput accounting."""
    for path, flag in ((png, "--png"), (page, "--html")):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{flag} {path}: directory {path.parent} does not exist")
    cluster = open_cluster()
    record = cluster.store.get_job(namespace, name)
    built = gather(cluster.store, cluster.home, record, now=time.time())
    from trainguard.cli.report_plot import write_files  # noqa: PLC0415 (matplotlib is heavy)

    written = write_files(built, png=png, page=page)
    if output is ReportOutput.json:
        console.print_json(to_json(built) | {"files": [str(p) for p in written]})
        return
    console.out.print(render_text(built), markup=False, highlight=False)
    for path in written:
        console.out.print(f"wrote {path}", markup=False)


def render_text(report: JobReport) -> str:
    """The accounting as an aligned table, with the job's headline numbers."""
    accounting = report.accounting
    wall = accounting.wall or 1.0
    lines = [
        f"Job:        {report.record.namespace}/{report.record.name} ({report.phase})",
        f"Goodput:    {accounting.goodput:.1%} "
        f"({accounting.useful:.1f} s useful training of {accounting.wall:.1f} s wall)",
        f"Steps:      reached {accounting.steps}, redone {accounting.redone_steps}",
        f"Restarts:   {len(report.restarts)}"
        + "".join(f"\n  {r.restart_type} {r.reason}" for r in report.restarts),
        "",
        f"{'where the time went':<22}{'seconds':>10}{'share':>8}",
    ]
    for name in BUCKETS:
        seconds = getattr(accounting, name)
        lines.append(f"{name.replace('_', ' '):<22}{seconds:>10.2f}{seconds / wall:>8.1%}")
    lines.append(f"{'wall':<22}{accounting.wall:>10.2f}{1:>8.0%}")
    if not report.timelines:
        lines.append(
            "(no agent timelines found: per-rank stalls and the picture's lanes are empty)"
        )
    return "\n".join(lines)


def write_run_report(cluster: LocalCluster, record: JobRecord) -> Path | None:
    """At the end of ``run``: the report as of now, drawn into the job's directory by a
    background process (`trainguard.cli.report_render`); the picture's path, or None when the
    job has no directory."""
    directory = job_dir(cluster.home, record.namespace, record.name)
    built = gather(cluster.store, cluster.home, record, now=time.time())
    if not directory.is_dir():
        return None
    png, page = directory / RUN_REPORT_PNG, directory / RUN_REPORT_HTML
    hand_over(built, home=cluster.home, png=png, page=page)
    return png
