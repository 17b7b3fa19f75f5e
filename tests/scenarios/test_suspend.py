"""``runPolicy.suspend`` on a running job, without Kueue, on every backend (``driver``).

Suspended (``trainguard job suspend`` / ``kubectl patch``), the job's pods are stopped with
``Suspended=True`` and no restart counted; resumed, it trains on from its newest checkpoint:
locally from node memory, which outlives the pods (at most one memory interval lost), on
Kubernetes from the durable tier (a pod's ``emptyDir`` memory goes with it; the job writes the
durable tier every memory interval, and the last save may be in flight: two intervals).
"""

from __future__ import annotations

import time

import pytest

from tests.scenarios.driver import Driver
from trainguard import constants as c

pytestmark = pytest.mark.slow

MEMORY_EVERY = 10
STEPS = 250
"""Long enough that a loaded machine still finds it training when the suspension lands."""


def suspended(driver: Driver) -> bool:
    found = [x for x in driver.view().status.get("conditions") or [] if x["type"] == "Suspended"]
    return bool(found) and found[0]["status"] == "True"


def test_suspend_stops_the_pods_and_resume_continues_from_the_newest_checkpoint(
    driver: Driver,
) -> None:
    driver.submit(driver.manifest(steps=STEPS, args=(f"--durable-every={MEMORY_EVERY}",)))
    driver.wait_step(2 * MEMORY_EVERY + 5)
    before = driver.view().status.get("restartCount", 0)
    driver.set_suspend(True)
    last_seen, deadline = 0, time.monotonic() + 120
    while not suspended(driver):
        last_seen = max(last_seen, driver.step())
        assert time.monotonic() < deadline, f"the job was not suspended: {driver.view()}"
    held = driver.wait_view(lambda v: not v.pods, timeout=60, what="no pods")
    assert held.status.get("restartCount", 0) == before, f"a suspension is no restart: {held}"
    driver.set_suspend(False)
    view = driver.wait_final(timeout=300)
    assert view.final() == "Completed", view
    assert c.REASON_SUSPENDED in view.reasons() and c.REASON_RESUMED in view.reasons()
    resumed = [r for r in view.status.get("resumes") or [] if r.get("step")]
    assert resumed, view.status.get("resumes")
    lost = last_seen - resumed[-1]["step"]
    if driver.name == "local":
        assert resumed[-1]["tier"] == "memory" and lost <= MEMORY_EVERY, (resumed, last_seen)
    else:
        assert lost <= 2 * MEMORY_EVERY, (resumed, last_seen)
