"""Where a training run's time went, and whether its resumes were right.

Lost time = wall time - committed steps x the reference step time, where the reference is the
same for every arm (the padded step time the harness asked for), so an arm cannot look better
by having slower healthy steps. `lost_time` splits it, from the workers' own event logs:

* ``boot``: launch -> every rank completed its first step, minus that one step;
* ``relaunch``: each fault's death -> every rank's new process started (detection included:
  torchrun exposes no detection time of its own);
* ``init``: -> every rank resumed (imports, rendezvous, model, restore);
* ``redone``: steps completed a second time after a resume, per rank, x the reference;
* ``stalls``: the time the loops were blocked by checkpoint saves (mean over ranks);
* ``drain``: the last step -> every rank finished the checkpoint work still queued;
* ``shutdown``: -> the launcher's exit (barrier, agents, controller, pods);
* ``other``: what is left (slow steps, the few steps cut by a fault, overlap between parts).

`gate_failures` is the correctness gate every training bench applies: a resume from nothing
after a save existed, ranks of one attempt resuming different steps, a restored state whose
checksum differs from the one logged at save time, and a final state that differs from a
fault-free run of the same seed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.arms import Events, Trial

PARTS = ("boot", "relaunch", "init", "redone", "stalls", "drain", "shutdown", "other")


def lost_time(trial: Trial, events: Events, *, steps: int, reference: float) -> dict[str, float]:
    """Seconds lost in total (``lost``) and per part (`PARTS`)."""
    ranks = max(1, len(events.ranks))
    committed = min(events.last_step(), steps)
    last_step = max((r["t"] for r in events.of("step")), default=0.0)
    drained = max((r["t"] for r in events.of("drained")), default=last_step)
    parts = {
        "boot": events.all_stepped_at() - trial.started - reference,
        "relaunch": sum(gap for gap, _ in restart_gaps(events)),
        "init": sum(gap for _, gap in restart_gaps(events)),
        "redone": events.steps_redone() / ranks * reference,
        "stalls": sum(r.get("stall", 0.0) for r in events.of("step")) / ranks,
        "drain": drained - last_step,
        "shutdown": trial.started + trial.wall_s - drained,
    }
    lost = trial.wall_s - committed * reference
    parts["other"] = lost - sum(parts.values())
    return {"lost": lost, **parts}


def restart_gaps(events: Events) -> list[tuple[float, float]]:
    """Per fault: (death → every rank's process started, → every rank resumed)."""
    gaps = []
    for death in events.of("die"):
        started = _all_after(events, "boot", death["t"], at_field="at", phase="start")
        resumed = _all_after(events, "resume", death["t"])
        if started is not None and resumed is not None:
            gaps.append((started - death["t"], resumed - started))
    return gaps


def _all_after(
    events: Events, kind: str, after: float, *, at_field: str = "t", phase: str | None = None
) -> float | None:
    """When the slowest rank logged its first ``kind`` record after ``after`` (None if one
    never did)."""
    firsts = []
    for rank in events.ranks:
        times = [
            r[at_field]
            for r in events.of(kind)
            if r["rank"] == rank and r[at_field] > after and (phase is None or r["phase"] == phase)
        ]
        if not times:
            return None
        firsts.append(min(times))
    return max(firsts) if firsts else None


def redone_per_rank(events: Events) -> dict[int, int]:
    """Step completions beyond the first of each step, per rank."""
    seen: set[tuple[int, int]] = set()
    redone: dict[int, int] = defaultdict(int)
    for record in events.of("step"):
        key = (record["rank"], record["step"])
        redone[record["rank"]] += key in seen
        seen.add(key)
    return {rank: redone[rank] for rank in events.ranks}


def gate_failures(events: Events, reference: dict[int, str] | None) -> list[str]:
    """Every violation of the correctness gate (empty when the run is correct)."""
    failures = events.gate_failures()
    failures += _resumed_from_nothing(events)
    failures += _ranks_disagree(events)
    if reference is not None:
        for record in events.of("final"):
            expected = reference.get(record["rank"])
            if record["digest"] != expected:
                failures.append(
                    f"rank {record['rank']}: final state {record['digest']}, "
                    f"fault-free run {expected}"
                )
    return failures


def final_digests(events: Events) -> dict[int, str]:
    """Each rank's checksum after its last step (from a fault-free reference run)."""
    return {r["rank"]: r["digest"] for r in events.of("final") if r["digest"]}


def _resumed_from_nothing(events: Events) -> list[str]:
    found = []
    for resume in events.of("resume"):
        saved = [
            r for r in events.of("saved") if r["rank"] == resume["rank"] and r["t"] < resume["t"]
        ]
        if resume["step"] is None and saved:
            found.append(
                f"rank {resume['rank']} resumed from nothing after step {saved[-1]['step']} "
                "was saved"
            )
    return found


def _ranks_disagree(events: Events) -> list[str]:
    by_attempt: dict[Any, set[Any]] = defaultdict(set)
    for resume in events.of("resume"):
        by_attempt[resume["attempt"]].add(resume["step"])
    return [
        f"attempt {attempt}: ranks resumed different steps {sorted(map(str, steps))}"
        for attempt, steps in by_attempt.items()
        if len(steps) > 1
    ]
