"""Where a worker's log files are on disk, for ``trainguard job logs``.

The local backend keeps every pod's directory (``$TRAINGUARD_HOME/pods/<ns>/<job>/<pod>/``)
after the pod is deleted, so logs are read from there rather than through the pod's agent: they
stay readable after ``cleanPodPolicy: All`` removed the pods, and every earlier attempt
(``--previous``) is still on disk. The agent lays files out as torch's ``DefaultLogsSpecs`` does:
``logs/<run_id>/attempt_<N>/<local_rank>/stdout.log``, one run directory per agent start (a
recreated pod) and one attempt directory per process-level restart.

Which pod ran a global rank: the live pod whose node rank holds it, else any pod whose output
(``pod.log``, the agent's tee with ``[rankN]:`` prefixes) shows it: a spare promoted to a rank
or a pod removed at the end leaves no record, but its tee does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from trainguard.names import safe_join
from trainguard.store.records import PodRecord

POD_LOG = "pod.log"
"""The agent's own output and its tee of every worker line, in each pod directory."""
SCAN_BLOCK = 1 << 20
"""Bytes read at a time when looking for a rank's prefix in a pod's tee."""
_ATTEMPT = re.compile(r"attempt_(\d+)$")


@dataclass(frozen=True)
class AttemptLog:
    """One attempt's log file of one rank."""

    pod: str
    path: Path
    started: float


def job_dir(home: Path, namespace: str, job: str) -> Path:
    """The directory holding the job's pod directories."""
    return safe_join(home / "pods", namespace, job, what="job directory")


def rank_logs(
    home: Path, namespace: str, job: str, *, rank: int, pods: list[PodRecord], stream: str
) -> list[AttemptLog]:
    """Every attempt's ``stream`` file of global ``rank``, oldest first."""
    root = job_dir(home, namespace, job)
    names = _pods_of_rank(root, rank, pods)
    found = [log for name in names for log in _attempts(root / name, rank, stream)]
    return sorted(found, key=lambda log: log.started)


def _pods_of_rank(root: Path, rank: int, pods: list[PodRecord]) -> list[str]:
    if not root.is_dir():
        return []
    live = {pod.name for pod in pods if _runs(pod, rank, root)}
    prefix = f"[rank{rank}]:".encode()
    seen = {d.name for d in root.iterdir() if d.is_dir() and _mentions(d / POD_LOG, prefix)}
    return sorted(live | seen)


def _runs(pod: PodRecord, rank: int, root: Path) -> bool:
    if pod.node_rank is None or pod.spare:
        return False
    per_node = _local_count(root / pod.name)
    return per_node is not None and pod.node_rank == rank // per_node


def _local_count(pod_dir: Path) -> int | None:
    """Workers per attempt in ``pod_dir`` (the numeric directories of its newest attempt)."""
    attempts = sorted(pod_dir.glob("logs/*/attempt_*"), key=lambda p: p.stat().st_mtime)
    for attempt in reversed(attempts):
        count = sum(1 for d in attempt.iterdir() if d.name.isdigit())
        if count:
            return count
    return None


def _mentions(path: Path, prefix: bytes) -> bool:
    """Whether the tee at ``path`` holds a line of that rank (read in blocks, never whole)."""
    try:
        with path.open("rb") as handle:
            carry = b""
            while block := handle.read(SCAN_BLOCK):
                if prefix in carry + block:
                    return True
                carry = block[-len(prefix) :]
    except OSError:
        return False
    return False


def _attempts(pod_dir: Path, rank: int, stream: str) -> list[AttemptLog]:
    found = []
    for attempt in pod_dir.glob("logs/*/attempt_*"):
        if not _ATTEMPT.search(attempt.name):
            continue
        locals_ = sorted(int(d.name) for d in attempt.iterdir() if d.name.isdigit())
        if not locals_:
            continue
        path = attempt / str(rank % len(locals_)) / f"{stream}.log"
        if path.exists():
            found.append(AttemptLog(pod_dir.name, path, attempt.stat().st_mtime))
    return found
