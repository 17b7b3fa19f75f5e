"""Wall-clock steps while jobs run (issue 12, item 3): every interval is monotonic.

The fake clock's wall time jumps by hours while its monotonic time advances normally, as when
NTP steps the clock or a VM resumes. Before, +1 h caused a false PodLost (a used-up restart),
-2 h froze a 90 s stop timeout and reported remediation times of an hour.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.controller.harness import Harness, manifest
from trainguard import constants as c
from trainguard.controller.deps import ControllerSettings
from trainguard.controller.state import JobPhase

JUMPS = pytest.mark.parametrize("jump", [3600.0, -7200.0], ids=["+1h", "-2h"])


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@JUMPS
def test_a_jump_while_agents_boot_is_no_pod_lost_and_the_ready_timeout_still_fires(
    h: Harness, jump: float
) -> None:
    h.submit(manifest())
    assert h.step() is JobPhase.CREATING
    for pod in h.pods():
        h.backend.agents[pod.name].reachable = False  # booting: no status yet
    h.clock.step_wall(jump)
    assert h.step(times=3) is JobPhase.CREATING
    assert not [e for e in h.events() if e[1] == c.REASON_POD_LOST]
    timeout = ControllerSettings().ready_timeout
    assert h.step(advance=timeout - 1) is JobPhase.CREATING
    assert h.step(advance=2) is JobPhase.RESTARTING
    assert [e for e in h.events() if e[1] == c.REASON_POD_LOST]


@JUMPS
def test_the_stop_timeout_fires_on_time_across_a_jump(h: Harness, jump: float) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    for rank in (0, 1):
        h.agent(rank).stops_instantly = False
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.RESTARTING
    h.clock.step_wall(jump)
    timeout = ControllerSettings().stop_timeout
    h.step(advance=timeout - 1)
    assert not [e for e in h.events() if e[1] == "StopTimeout"]
    h.step(advance=2)
    assert [e for e in h.events() if e[1] == "StopTimeout"]


@JUMPS
def test_remediation_time_is_measured_on_the_monotonic_clock(h: Harness, jump: float) -> None:
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.agent(1).crash(now=h.clock.wall())
    assert h.step(advance=0.25) is JobPhase.RESTARTING
    h.clock.step_wall(jump)
    h.run_until(JobPhase.RUNNING)
    message = [m for _, reason, m in h.events() if reason == c.REASON_RUNNING][-1]
    found = re.search(r"remediated in (-?\d+) milliseconds", message)
    assert found is not None, message
    assert 0 <= int(found[1]) <= 2000, message


def test_agent_statuses_keep_being_polled_after_a_backward_jump(h: Harness) -> None:
    """Status cache ages were wall-clock: -2 h froze polling, and the crash went unseen."""
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    h.clock.step_wall(-7200)
    h.agent(0).crash(now=h.clock.wall())
    assert h.step() is JobPhase.RESTARTING


def test_the_eval_period_counts_monotonic_time_across_a_forward_jump(h: Harness) -> None:
    """Three PLRs within evalPeriodSeconds escalate to a full restart; a +2 h step between them
    used to push the earlier ones out of the 1 h window."""
    h.submit(manifest())
    h.run_until(JobPhase.RUNNING)
    for crash in range(4):
        if crash == 2:
            h.clock.step_wall(7200)
        h.agent(0).crash(now=h.clock.wall())
        h.step()
        if crash < 3:
            h.run_until(JobPhase.RUNNING)
    assert "FullJobRestart" in [reason for _, reason, _ in h.events()]
