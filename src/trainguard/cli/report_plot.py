"""The job report's picture (PNG, matplotlib's Agg backend) and its HTML page.

One lane per global rank: boot (start of the workers until the rank's first logged step),
training, the part of training that was redone after a restart (hatched), checkpoint saves
(ticks as wide as the loop waited); a job lane on top: detection (last step until the fault
was seen), restart (until the workers were started again), injected faults and resumes. Below,
the goodput accounting as one stacked bar. Time runs in seconds from the job's creation.
matplotlib (its Agg canvas, no pyplot state) is imported here only, so no other command pays
for it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from trainguard.cli.report_data import JobReport, RankTrack, step_time
from trainguard.policy.goodput import BUCKETS, Segment

COLORS = {
    "useful": "#2e9e4f",
    "boot": "#b8b8b8",
    "checkpoint_stall": "#1f5fbf",
    "redone": "#d9534f",
    "detection": "#f0a030",
    "restart": "#8e5ac8",
    "other": "#e6e6e6",
}
LABELS = {
    "useful": "useful training",
    "boot": "boot",
    "checkpoint_stall": "checkpoint save (stall)",
    "redone": "redone steps",
    "detection": "detection",
    "restart": "restart",
    "other": "other",
}
LANE = 0.6


def render_png(report: JobReport) -> bytes:
    """The picture as PNG bytes."""
    ranks = sorted(report.tracks)
    height = 2.6 + 0.5 * (len(ranks) + 1)
    figure = Figure(figsize=(12, height))
    FigureCanvasAgg(figure)
    timeline, bar = figure.subplots(2, 1, gridspec_kw={"height_ratios": [len(ranks) + 1.5, 1.1]})
    _draw_timeline(timeline, report, ranks)
    _draw_accounting(bar, report)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _draw_timeline(axes: Any, report: JobReport, ranks: list[int]) -> None:
    origin, job_y = report.start, len(ranks)
    if report.segments:
        begin = report.segments[0].started - origin
        axes.broken_barh([(0, begin)], (job_y - LANE / 2, LANE), color=COLORS["boot"])
        axes.annotate("pods starting", (begin / 2, job_y), fontsize=8, ha="center", va="center")
    for index, segment in enumerate(report.segments):
        following = report.segments[index + 1] if index + 1 < len(report.segments) else None
        for lane, rank in enumerate(ranks):
            _draw_rank_segment(
                axes, report.tracks[rank], segment, following=following, lane=lane, origin=origin
            )
        _draw_job_segment(axes, segment, following, job_y, origin)
    for lane, rank in enumerate(ranks):
        for began, seconds, step in report.tracks[rank].saves:
            if step is not None and step < 0:
                continue  # the hold while a checkpoint loads: part of boot
            x, top = began - origin, lane + LANE / 2
            axes.vlines(x, top, top + 0.12, color=COLORS["checkpoint_stall"], linewidth=0.8)
            axes.broken_barh(
                [(x, seconds)], (lane - LANE / 2, LANE), color=COLORS["checkpoint_stall"]
            )
    for event in report.events:
        if event.reason == "FaultInjected":
            axes.axvline(event.time - origin, color="#b00000", linestyle="--", linewidth=1)
            axes.annotate(
                "fault injected", (event.time - origin, -0.65), color="#b00000",
                fontsize=8, ha="right", va="bottom", xytext=(-3, 0), textcoords="offset points",
            )  # fmt: skip
    labels = [_rank_label(report.tracks[r]) for r in ranks] + ["job"]
    axes.set_yticks(range(len(labels)), labels)
    axes.set_ylim(-0.7, job_y + 0.9)
    axes.set_xlim(0, max(report.end - origin, 1.0) * 1.01)
    axes.set_xlabel("seconds since the job was created")
    axes.grid(axis="x", alpha=0.3)
    accounting = report.accounting
    axes.set_title(
        f"{report.record.name}: {report.phase}, goodput {accounting.goodput:.0%} "
        f"({accounting.useful:.1f} s useful of {accounting.wall:.1f} s), "
        f"{len(report.restarts)} restart(s), {accounting.redone_steps} step(s) redone",
        loc="left",
    )
    axes.legend(handles=_legend(), loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def _draw_rank_segment(
    axes: Any,
    track: RankTrack,
    segment: Segment,
    *,
    following: Segment | None,
    lane: int,
    origin: float,
) -> None:
    stop = segment.ended if segment.ended is not None else float("inf")
    samples = [(t, s) for t, s, r in track.steps if r == segment.restart and t <= stop]
    y = (lane - LANE / 2, LANE)
    if not samples:
        if segment.ended is not None:  # stopped before its first step: all of it was boot
            width = stop - segment.started
            axes.broken_barh([(segment.started - origin, width)], y, color=COLORS["boot"])
        return
    first, last = samples[0], samples[-1]
    axes.broken_barh(
        [(segment.started - origin, first[0] - segment.started)], y, color=COLORS["boot"]
    )
    axes.broken_barh([(first[0] - origin, last[0] - first[0])], y, color=COLORS["useful"])
    if following is not None:
        kept = following.resumed_from or 0
        redo_from = step_time(track, kept + 1, after=segment.started, before=stop)
        if redo_from is not None and redo_from < last[0]:
            axes.broken_barh(
                [(redo_from - origin, last[0] - redo_from)], y, facecolor=COLORS["redone"],
                edgecolor="white", hatch="///",
            )  # fmt: skip
    axes.annotate(
        f"steps {first[1]}-{last[1]}", ((first[0] + last[0]) / 2 - origin, lane), fontsize=7,
        ha="center", va="center", color="white", fontweight="bold",
    )  # fmt: skip


def _draw_job_segment(
    axes: Any, segment: Segment, following: Segment | None, y: int, origin: float
) -> None:
    lane = (y - LANE / 2, LANE)
    last = segment.last or segment.first
    if segment.fault is not None and segment.ended is not None:
        if last is not None:
            width = segment.ended - last.time
            axes.broken_barh([(last.time - origin, width)], lane, color=COLORS["detection"])
        axes.annotate(
            f"{segment.fault} seen", (segment.ended - origin, y + LANE / 2), fontsize=8,
            va="bottom", ha="right", xytext=(-2, 1), textcoords="offset points",
        )  # fmt: skip
    if following is not None and segment.ended is not None:
        gap = following.started - segment.ended
        axes.broken_barh([(segment.ended - origin, gap)], lane, color=COLORS["restart"])
        step = following.resumed_from
        tier = f"resumed at step {step}" if step else "restarted from scratch"
        axes.annotate(
            tier, (following.started - origin, y + LANE / 2), fontsize=8, va="bottom",
            xytext=(2, 0), textcoords="offset points",
        )  # fmt: skip
    if segment.first is not None:
        axes.broken_barh(
            [(segment.first.time - origin, (last or segment.first).time - segment.first.time)],
            lane,
            color=COLORS["useful"],
            alpha=0.5,
        )


def _draw_accounting(axes: Any, report: JobReport) -> None:
    accounting, left = report.accounting, 0.0
    wall = accounting.wall or 1.0
    for name in BUCKETS:
        seconds = getattr(accounting, name)
        if seconds <= 0:
            continue
        axes.barh(0, seconds, left=left, color=COLORS[name], edgecolor="white")
        if seconds / wall > 0.04:
            text = f"{LABELS[name]}\n{seconds:.1f} s ({seconds / wall:.0%})"
            axes.text(left + seconds / 2, 0, text, ha="center", va="center", fontsize=8)
        left += seconds
    axes.set_xlim(0, wall)
    axes.set_yticks([])
    axes.set_xlabel("goodput accounting: where the wall time went (seconds)")


def _legend() -> list[Any]:
    return [
        Patch(facecolor=COLORS[n], label=LABELS[n], hatch="///" if n == "redone" else None)
        for n in BUCKETS
        if n != "other"
    ]


def _rank_label(track: RankTrack) -> str:
    pods = ", ".join(p.rsplit("-", 1)[-1] for p in track.pods)
    return f"rank {track.rank} (pod {pods})" if pods else f"rank {track.rank}"


def render_html(report: JobReport, png: bytes) -> str:
    """A self-contained page: the picture (embedded) and the accounting table."""
    accounting = report.accounting
    rows = "".join(
        f"<tr><td>{html.escape(LABELS[name])}</td><td>{seconds:.2f}</td>"
        f"<td>{seconds / (accounting.wall or 1):.1%}</td></tr>"
        for name, seconds in accounting.seconds().items()
    )
    title = html.escape(f"{report.record.namespace}/{report.record.name}")
    image = base64.b64encode(png).decode()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}: goodput {accounting.goodput:.1%}</h1>"
        f"<img alt='timeline of {title}' src='data:image/png;base64,{image}'>"
        "<table border='1' cellpadding='4'><tr><th>where the time went</th><th>seconds</th>"
        f"<th>share</th></tr>{rows}<tr><th>wall</th><th>{accounting.wall:.2f}</th><th>100%</th>"
        f"</tr></table><p>steps reached {accounting.steps}, redone {accounting.redone_steps}</p>"
        "</body></html>"
    )


def write_files(report: JobReport, *, png: Path | None, page: Path | None) -> list[Path]:
    """Write the PNG and/or the HTML page; returns what was written."""
    if png is None and page is None:
        return []
    picture = render_png(report)
    written = []
    if png is not None:
        png.write_bytes(picture)
        written.append(png)
    if page is not None:
        page.write_text(render_html(report, picture))
        written.append(page)
    return written
