"""Issue 19: an elastic job on every backend (``driver``: ``local`` and ``kubernetes``).

One combined scenario per backend, to spend CI time once: a 3-node elastic job (min 1, max 3,
one worker per node) is submitted while two of the three nodes are ``Unschedulable`` and starts
at 1; the nodes come back and it grows to 3; a node is labelled for replacement with no spare
and no free node, and it continues at 2 — survivors keep their pods, the workers resume from
the newest durable checkpoint (DCP reshards it to the new world size), the loss keeps falling,
and the resize costs no restart of ``jobMaxRetryCount``; the node returns and, after the
scale-up snooze, the job is back at 3.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.scenarios.driver import Driver, JobView, losses
from trainguard import constants as c

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # five restarts on a loaded machine

STEPS = 5000
"""Never reached: the scenario deletes the job once it is back at 3."""
DURABLE_EVERY = 10
SNOOZE = 8
NODES = ("node-0", "node-1", "node-2")
RESUMED = re.compile(r"Training resumed at step (\d+) from (\w+) \(checkpoint of step (\d+)\)")


def elastic_manifest(driver: Driver) -> dict[str, Any]:
    """The quickstart job as an elastic job of 1..3 nodes with one worker each."""
    restart = {"numRestartBeforeFullJobRestart": 3, "evalPeriodSeconds": 600}
    document = driver.manifest(
        steps=STEPS,
        args=(
            "--memory-every=5",
            f"--durable-every={DURABLE_EVERY}",
            f"--checkpoint-dir={driver.work / 'durable'}",
        ),
        restartPolicy={**restart, "scaleUpSnoozeTimeInSeconds": SNOOZE},
    )
    spec = document["spec"]
    spec["nprocPerNode"] = "1"
    spec["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": 3}
    group = spec["replicaSpecs"][0]
    group["replicas"] = 3
    container = group["template"]["spec"]["containers"][0]
    swaps = {"--nproc-per-node=2": "--nproc-per-node=1", "--nnodes=2": "--nnodes=3"}
    container["command"] = [swaps.get(arg, arg) for arg in container["command"]]
    return document


RESIZES = (c.REASON_SCALE_UP, c.REASON_SCALE_DOWN)


def trained_after(view: JobView, reasons: tuple[str, ...]) -> str | None:
    """The first TrainingResumed message after the last event of one of ``reasons``."""
    marks = [i for i, (_, reason, _) in enumerate(view.events) if reason in reasons]
    if not marks:
        return None
    later = view.events[marks[-1] + 1 :]
    return next((m for _, r, m in later if r == c.REASON_TRAINING_RESUMED), None)


def settled_at(size: int) -> Any:
    """A view test: ``size`` nodes run and trained since the last resize."""

    def test(view: JobView) -> bool:
        running = view.status.get("currentReplicas") == size and len(view.pods) == size
        return running and trained_after(view, RESIZES) is not None

    return test


def rank0_losses(driver: Driver) -> dict[int, float]:
    return losses(driver.log_lines()).get(0, {})


def wait_rank0_step(driver: Driver, step: int, *, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while max(rank0_losses(driver), default=0) < step:
        assert time.monotonic() < deadline, f"{driver.name}: rank 0 never logged step {step}"
        time.sleep(0.25)


def durable_steps(driver: Driver) -> list[int]:
    """Steps committed to the durable tier (``<dir>/<job>/step_<N>/COMMITTED``)."""
    markers = (driver.work / "durable").glob("*/step_*/COMMITTED")
    return sorted(int(marker.parent.name.removeprefix("step_")) for marker in markers)


def wait_durable_after(driver: Driver, step: int, *, timeout: float = 90) -> int:
    """Wait until a durable step above ``step`` is committed; return it."""
    deadline = time.monotonic() + timeout
    while not [s for s in durable_steps(driver) if s > step]:
        assert time.monotonic() < deadline, f"{driver.name}: no durable step after {step}"
        time.sleep(0.25)
    return max(durable_steps(driver))


def resumed(message: str) -> tuple[int, str, int]:
    """``(first step, tier, checkpoint step)`` of a TrainingResumed message."""
    match = RESUMED.search(message)
    assert match, message
    return int(match[1]), match[2], int(match[3])


def test_elastic_job_starts_starved_shrinks_on_node_loss_and_grows_back(driver: Driver) -> None:
    health = c.LABEL_NODE_HEALTH
    for node in NODES[1:]:
        driver.label_node(node, health, c.HEALTH_UNSCHEDULABLE)
    driver.submit(elastic_manifest(driver))
    started = driver.wait_view(
        lambda v: v.status.get("currentReplicas") == 1, timeout=90, what="the job at 1 node"
    )
    assert list(started.pods.values()) == [NODES[0]]
    wait_durable_after(driver, 0)  # a checkpoint to grow from

    for node in NODES[1:]:  # one after the other: the job may grow 1 -> 2 -> 3
        driver.label_node(node, health, c.HEALTH_SCHEDULABLE)
    grown = driver.wait_view(settled_at(3), timeout=150, what="the job grown to 3 nodes")
    ups = grown.messages(c.REASON_SCALE_UP)
    assert ups[0].startswith("Scaling from 1 to ") and " to 3 node(s)" in ups[-1], ups
    assert grown.status["desiredReplicas"] == 3
    message = trained_after(grown, RESIZES)
    assert message is not None
    first_at_3, _, _ = resumed(message)
    saved_at_3 = wait_durable_after(driver, first_at_3)

    victim = next(node for node in grown.pods.values() if node != NODES[0])
    lost = next(name for name, node in grown.pods.items() if node == victim)
    driver.label_node(victim, health, c.HEALTH_PENDING_REPLACEMENT)
    shrunk = driver.wait_view(
        lambda v: trained_after(v, (c.REASON_SCALE_DOWN,)) is not None,
        timeout=120,
        what="training at 2 nodes",
    )  # the local cluster brings the node back after 5 s: the job may be growing already
    assert shrunk.messages(c.REASON_SCALE_DOWN)[0].startswith("Scaling from 3 to 2 node(s)")
    assert lost not in shrunk.pods and set(grown.pods) - {lost} <= set(shrunk.pods)
    assert shrunk.status.get("restartCount", 0) == 0, "a resize is not counted as a restart"
    message = trained_after(shrunk, (c.REASON_SCALE_DOWN,))
    assert message is not None and "fault of reason NodeFault" in message
    first_at_2, tier, checkpoint = resumed(message)
    assert tier == "durable" and checkpoint >= saved_at_3 and checkpoint % DURABLE_EVERY == 0
    assert first_at_2 == checkpoint + 1, "training goes on from the checkpoint's state"
    at_2 = [r for r in shrunk.status["resumes"] if r.get("worldSize") == 2][-1]  # (1 -> 2 too)
    assert (at_2["tier"], at_2["step"], at_2.get("savedWorldSize")) == ("durable", checkpoint, 3)
    wait_rank0_step(driver, first_at_2 + 5)
    loss = rank0_losses(driver)
    before = [loss[s] for s in range(1, 6)]
    after = [loss[s] for s in range(first_at_2, first_at_2 + 5)]
    assert sum(after) < sum(before) / 2, f"the loss keeps falling: {before} {after}"

    driver.label_node(victim, health, c.HEALTH_SCHEDULABLE)  # back (the local cluster reboots)
    back = driver.wait_view(settled_at(3), timeout=120, what="the job back at 3 nodes")
    assert back.messages(c.REASON_SCALE_UP)[-1].startswith("Scaling from 2 to 3 node(s)")
    assert back.status.get("restartCount", 0) == 0
    driver.delete_job()
