"""``trainguard job logs``: a worker's output, read from the pod directories on disk.

Like ``kubectl logs``: the last ``--tail`` lines of the current attempt; ``--previous`` the
attempt before it (the one that crashed, once the workers were restarted); ``-f`` prints what is
there once and then only new lines, moving on to the next attempt after a restart, until the job
ends. Reading the files (`trainguard.cli.logfiles`) instead of asking the pod's agent is what
keeps logs readable once ``cleanPodPolicy: All`` deleted the pods.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated

import typer

from trainguard.agent.logs import LogFollower, tail_lines
from trainguard.cli.console import handle_errors
from trainguard.cli.local import LocalCluster, open_cluster
from trainguard.cli.logfiles import AttemptLog, rank_logs
from trainguard.controller.state import TERMINAL
from trainguard.errors import NotFoundError, UsageError

FOLLOW_INTERVAL = 0.5
"""Seconds between reads of the followed file."""
RESCAN_EVERY = 4
"""Follow reads between looks for a newer attempt (a restart) of the rank."""


@handle_errors
def logs(
    name: str,
    *,
    rank: Annotated[int, typer.Option("--rank", min=0, help="Global rank of the worker.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Print new lines as they come, until the end.")
    ] = False,
    previous: Annotated[
        bool, typer.Option("--previous", "-p", help="The attempt before the current one.")
    ] = False,
    tail: Annotated[int, typer.Option("--tail", min=0, help="Lines to show first.")] = 100,
    stderr: Annotated[bool, typer.Option("--stderr", help="The worker's stderr.")] = False,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")] = "default",
) -> None:
    """Print a worker's log, also after its pods were removed (kubectl logs)."""
    if follow and previous:
        raise UsageError("--follow and --previous cannot be combined")
    cluster = open_cluster()
    stream = "stderr" if stderr else "stdout"
    attempts = _attempts(cluster, namespace, name, rank, stream)
    chosen = _previous(attempts, name, rank) if previous else attempts[-1]
    if not follow:
        for line in tail_lines(chosen.path, tail):
            typer.echo(line)
        return
    follower = LogFollower(chosen.path)
    shown: deque[str] = deque(maxlen=tail)
    while batch := follower.read():  # to the end once, so no line is printed twice or lost
        shown.extend(batch)
    for line in shown:
        typer.echo(line)
    _follow(cluster, namespace, name, rank=rank, stream=stream, current=(chosen, follower))


def _attempts(
    cluster: LocalCluster, namespace: str, name: str, rank: int, stream: str
) -> list[AttemptLog]:
    pods = cluster.store.list_pods(namespace, name)
    found = rank_logs(cluster.home, namespace, name, rank=rank, pods=pods, stream=stream)
    if found:
        return found
    cluster.store.get_job(namespace, name)  # NotFoundError names a job that does not exist
    raise NotFoundError(f"rank {rank} of job {name} has written no log yet")


def _previous(attempts: list[AttemptLog], name: str, rank: int) -> AttemptLog:
    if len(attempts) < 2:
        raise NotFoundError(f"rank {rank} of job {name} has no previous attempt")
    return attempts[-2]


def _follow(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    *,
    rank: int,
    stream: str,
    current: tuple[AttemptLog, LogFollower],
) -> None:
    """New lines of the current attempt, then of each newer one, until the job has ended."""
    log, follower = current
    reads = 0
    while True:
        for line in follower.read():
            typer.echo(line)
        ended = _ended(cluster, namespace, name)
        reads += 1
        if ended or reads % RESCAN_EVERY == 0:
            newer = _attempts(cluster, namespace, name, rank, stream)[-1]
            if newer.path != log.path:
                for line in follower.read():
                    typer.echo(line)
                log, follower = newer, LogFollower(newer.path)
                continue
        if ended:
            for line in follower.read():
                typer.echo(line)
            return
        time.sleep(FOLLOW_INTERVAL)


def _ended(cluster: LocalCluster, namespace: str, name: str) -> bool:
    record = cluster.store.find_job(namespace, name)
    return record is None or record.state.phase in TERMINAL
