"""What ``trainguard job report`` knows about a job: the store's view plus the agents' timelines.

The store holds the job's segments (one per start of the workers, kept by the controller for
goodput), its restarts, events and resumes; each pod's agent wrote ``timeline.jsonl`` in the
pod's directory (`trainguard.agent.timeline`: per rank, step stamps, saves with their stall,
starts and stops). The pod directories outlive the pods (``cleanPodPolicy: All`` deletes the
processes, not the files), so a finished job can be reported on until it is run again. Records
older than the job (a previous run of the same name) are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainguard.backends.local.backend import TIMELINE_FILE
from trainguard.policy.goodput import Accounting, Segment, StepMark, account
from trainguard.store.base import Store
from trainguard.store.records import EventRecord, JobRecord, RestartRecord

MAX_TIMELINE_READ = 64 * 1024 * 1024
"""Bytes of one pod's timeline read at most (the agent stops writing at the same size)."""


@dataclass
class RankTrack:
    """One global rank's stamped history across every pod that ran it."""

    rank: int
    steps: list[tuple[float, int, int]] = field(default_factory=list)
    """(time, step, restart) samples, at most one a second per rank plus each stop's newest."""
    saves: list[tuple[float, float, int | None]] = field(default_factory=list)
    """(began, seconds the loop waited, step)."""
    resumes: list[tuple[float, int | None, str | None]] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)


@dataclass
class JobReport:
    """Everything the report prints and draws."""

    record: JobRecord
    phase: str
    start: float
    end: float
    segments: list[Segment]
    accounting: Accounting
    tracks: dict[int, RankTrack]
    restarts: list[RestartRecord]
    events: list[EventRecord]
    timelines: list[Path]


def job_dir(home: Path, namespace: str, name: str) -> Path:
    """Where a local job's pod directories (and its report files) live."""
    return home / "pods" / namespace / name


def gather(store: Store, home: Path, record: JobRecord, *, now: float) -> JobReport:
    """Build the report of ``record`` from the store and the pods' timeline files."""
    state = record.state
    start, end = record.created_at, record.finished_at or now
    paths = sorted(job_dir(home, record.namespace, record.name).glob(f"*/{TIMELINE_FILE}"))
    tracks: dict[int, RankTrack] = {}
    for path in paths:
        for item in read_timeline(path):
            if float(item.get("time", 0)) >= start - 1:
                _add(tracks, item)
    segments = [_refined(s, tracks, end=end) for s in state.segments]
    return JobReport(
        record=record,
        phase=state.phase.value,
        start=start,
        end=end,
        segments=segments,
        accounting=account(segments, start=start, end=end),
        tracks=dict(sorted(tracks.items())),
        restarts=store.list_restarts(record.namespace, record.name),
        events=store.list_events(kind="Job", namespace=record.namespace, name=record.name),
        timelines=paths,
    )


def read_timeline(path: Path) -> list[dict[str, Any]]:
    """The records of one timeline file; lines that are not JSON objects are skipped."""
    with path.open("rb") as handle:
        data = handle.read(MAX_TIMELINE_READ)
    records = []
    for line in data.decode(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("time"), int | float):
            records.append(item)
    return records


def _add(tracks: dict[int, RankTrack], item: dict[str, Any]) -> None:
    kind, rank = item.get("kind"), item.get("rank")
    if isinstance(item.get("ranks"), list):
        for each in item["ranks"]:
            if isinstance(each, int):
                track = tracks.setdefault(each, RankTrack(each))
                if item.get("pod") not in track.pods:
                    track.pods.append(str(item.get("pod")))
    if not isinstance(rank, int):
        return
    track, time = tracks.setdefault(rank, RankTrack(rank)), float(item["time"])
    step = item.get("step") if isinstance(item.get("step"), int) else None
    if kind == "step" and step is not None:
        track.steps.append((time, step, int(item.get("restart") or 0)))
    elif kind == "save":
        track.saves.append((time, float(item.get("seconds") or 0.0), step))
    elif kind == "resume":
        tier = item.get("tier")
        track.resumes.append((time, step, tier if isinstance(tier, str) else None))


def _refined(segment: Segment, tracks: dict[int, RankTrack], *, end: float) -> Segment:
    """The controller's segment with what the timelines know better: the first and last step
    (stamped as logged, not when the controller polled) and the checkpoint stall (seconds the
    saves held each rank's loop, averaged over ranks; the hold while loading, step -1, is boot).
    """
    stop = segment.ended if segment.ended is not None else end
    per_rank = [
        sum(
            seconds
            for began, seconds, step in track.saves
            if segment.started <= began <= stop and (step is None or step >= 0)
        )
        for track in tracks.values()
    ]
    update: dict[str, Any] = {"stall": sum(per_rank) / len(per_rank) if per_rank else 0.0}
    firsts, lasts = [], []
    for track in tracks.values():
        samples = [(t, s) for t, s, r in track.steps if r == segment.restart and t <= stop]
        if samples:
            firsts.append(StepMark(step=samples[0][1], time=samples[0][0]))
            lasts.append(StepMark(step=samples[-1][1], time=samples[-1][0]))
    if firsts and len(firsts) == len(tracks):
        update["first"] = max(firsts, key=lambda m: m.time)
        update["last"] = min(lasts, key=lambda m: m.step)
    return segment.model_copy(update=update)


def step_time(track: RankTrack, step: int, *, after: float, before: float) -> float | None:
    """When ``track`` reached ``step`` between two times (interpolated between samples)."""
    samples = sorted((t, s) for t, s, _ in track.steps if after <= t <= before)
    previous: tuple[float, int] | None = None
    for time, reached in samples:
        if reached >= step:
            if previous is None or reached == previous[1]:
                return time
            share = (step - previous[1]) / (reached - previous[1])
            return previous[0] + share * (time - previous[0])
        previous = (time, reached)
    return None


def to_json(report: JobReport) -> dict[str, Any]:
    """The ``-o json`` form."""
    accounting = report.accounting
    return {
        "job": report.record.name,
        "namespace": report.record.namespace,
        "phase": report.phase,
        "start": report.start,
        "end": report.end,
        "wallSeconds": round(accounting.wall, 3),
        "goodput": round(accounting.goodput, 4),
        "steps": accounting.steps,
        "redoneSteps": accounting.redone_steps,
        "accounting": {k: round(v, 3) for k, v in accounting.seconds().items()},
        "segments": [s.model_dump(mode="json") for s in report.segments],
        "restarts": [
            {"time": r.time, "type": r.restart_type, "reason": r.reason, "ranks": r.faulty_ranks}
            for r in report.restarts
        ],
        "ranks": {str(rank): _rank_json(track) for rank, track in report.tracks.items()},
        "timelines": [str(p) for p in report.timelines],
    }


def _rank_json(track: RankTrack) -> dict[str, Any]:
    steps = [s for _, s, _ in track.steps]
    return {
        "pods": track.pods,
        "firstStep": min(steps, default=None),
        "lastStep": max(steps, default=None),
        "saves": len(track.saves),
        "stallSeconds": round(sum(seconds for _, seconds, _ in track.saves), 3),
        "resumes": [{"step": s, "tier": t} for _, s, t in track.resumes],
    }
